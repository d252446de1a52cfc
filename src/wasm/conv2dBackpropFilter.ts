import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32, free, xnnConv2d } from './wasmHeap';
import { transposeHeap } from './transpose';

/**
 * dFilter of a convolution, which tfjs-backend-wasm 4.22 lacks entirely, as one forward XNNPACK
 * convolution: x seen as [C, H, W, N] (batch = input channels, channels = images) convolved with dy seen
 * as a [Ho, Wo, N, F] filter. The forward stride becomes that filter's dilation; the result
 * [C, kh, kw, F] is transposed to TF's [kh, kw, C, F].
 */
export function conv2dBackpropFilterWasm(
  backend: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: tf.Conv2DBackpropFilterAttrs,
): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') throw new Error(`wasm Conv2DBackpropFilter: dataFormat '${dataFormat}' unsupported, use NHWC`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, fmt,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, outChannels: f } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (dy.shape[0] !== n || dy.shape[1] !== ho || dy.shape[2] !== wo || dy.shape[3] !== f) {
    throw new Error(`wasm Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the forward output [${n},${ho},${wo},${f}]`);
  }
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  // Trailing rows the forward pass never reached (valid padding, stride not dividing) would need
  // negative padding here: compute them and crop instead.
  const padBottom = kh + (ho - 1) * sh - h - padTop;
  const padRight = kw + (wo - 1) * sw - w - padLeft;

  const xT = transposeHeap(backend, x, [3, 1, 2, 0]);
  const dyT = transposeHeap(backend, dy, [1, 2, 0, 3]);
  const g = xnnConv2d(backend, xT, dyT, {
    batch: c, inHeight: h, inWidth: w, inChannels: n, filterHeight: ho, filterWidth: wo, outChannels: f,
    padTop, padLeft, padBottom: Math.max(0, padBottom), padRight: Math.max(0, padRight),
    strideHeight: 1, strideWidth: 1, dilationHeight: sh, dilationWidth: sw,
  });
  free(backend, xT, dyT);
  const gh = g.shape[1];
  const gw = g.shape[2];
  if (gh < kh || gw < kw) {
    free(backend, g);
    throw new Error(`wasm Conv2DBackpropFilter: internal size mismatch (${gh}x${gw} < ${kh}x${kw})`);
  }
  const dw = alloc(backend, [kh, kw, c, f]);
  const src = f32(backend, g);
  const dst = f32(backend, dw);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let ci = 0; ci < c; ci++) {
        const from = ((ci * gh + a) * gw + b) * f;
        dst.set(src.subarray(from, from + f), ((a * kw + b) * c + ci) * f);
      }
    }
  }
  free(backend, g);
  return dw;
}

export const conv2dBackpropFilterKernel: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    conv2dBackpropFilterWasm(
      backend as WasmBackend,
      inputs.x as tf.TensorInfo,
      inputs.dy as tf.TensorInfo,
      attrs as unknown as tf.Conv2DBackpropFilterAttrs,
    ),
};
