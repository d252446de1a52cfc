import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32, free, xnnConv2d } from './wasmHeap';

/**
 * dInput of a convolution as a forward XNNPACK convolution: correlate dy with the filter rotated by 180
 * degrees and with in/out channels swapped. A forward stride s becomes s-1 zeros inserted between dy
 * pixels. The package's own Conv2DBackpropInput is a scalar C loop, several times slower.
 */

/** w [kh, kw, C, F] -> w' [kh, kw, F, C] with w'[a, b, f, c] = w[kh-1-a, kw-1-b, c, f]. */
export function rotateFilter(w: Float32Array, kh: number, kw: number, c: number, f: number, out: Float32Array): void {
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const src = ((kh - 1 - a) * kw + (kw - 1 - b)) * c * f;
      const dst = (a * kw + b) * f * c;
      for (let ci = 0; ci < c; ci++) {
        for (let fi = 0; fi < f; fi++) out[dst + fi * c + ci] = w[src + ci * f + fi];
      }
    }
  }
}

export function conv2dBackpropInputWasm(
  backend: WasmBackend,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: tf.Conv2DBackpropInputAttrs,
): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') throw new Error(`wasm Conv2DBackpropInput: dataFormat '${dataFormat}' unsupported, use NHWC`);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape as [number, number, number, number], filter.shape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, fmt,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, outChannels: f } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (dy.shape[1] !== ho || dy.shape[2] !== wo || dy.shape[3] !== f) {
    throw new Error(`wasm Conv2DBackpropInput: dy shape [${dy.shape}] does not match the forward output [${n},${ho},${wo},${f}]`);
  }
  const padTop = kh - 1 - info.padInfo.top;
  const padLeft = kw - 1 - info.padInfo.left;

  const wRot = alloc(backend, [kh, kw, f, c]);
  rotateFilter(f32(backend, filter), kh, kw, c, f, f32(backend, wRot));

  const padBottom = h - ((ho - 1) * sh + 1) - padTop + kh - 1;
  const padRight = w - ((wo - 1) * sw + 1) - padLeft + kw - 1;
  const direct = sh === 1 && sw === 1 && padTop >= 0 && padLeft >= 0 && padBottom >= 0 && padRight >= 0;
  let src = dy;
  let srcH = ho;
  let srcW = wo;
  let pads = { padTop, padLeft, padBottom, padRight };
  if (!direct) {
    // Place dy pixels s apart inside a zero canvas already padded to the size the stride-1 'valid'
    // correlation needs; pixels that land outside only ever met the forward padding.
    srcH = h + kh - 1;
    srcW = w + kw - 1;
    src = alloc(backend, [n, srcH, srcW, f]);
    const canvas = f32(backend, src);
    canvas.fill(0);
    const d = f32(backend, dy);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < ho; i++) {
        const r = i * sh + padTop;
        if (r < 0 || r >= srcH) continue;
        for (let j = 0; j < wo; j++) {
          const col = j * sw + padLeft;
          if (col < 0 || col >= srcW) continue;
          const from = ((b * ho + i) * wo + j) * f;
          canvas.set(d.subarray(from, from + f), ((b * srcH + r) * srcW + col) * f);
        }
      }
    }
    pads = { padTop: 0, padLeft: 0, padBottom: 0, padRight: 0 };
  }
  const dx = xnnConv2d(backend, src, wRot, {
    batch: n, inHeight: srcH, inWidth: srcW, inChannels: f, filterHeight: kh, filterWidth: kw, outChannels: c,
    ...pads, strideHeight: 1, strideWidth: 1, dilationHeight: 1, dilationWidth: 1,
  });
  free(backend, wRot);
  if (src !== dy) free(backend, src);
  return dx;
}

export const conv2dBackpropInputKernel: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    conv2dBackpropInputWasm(
      backend as WasmBackend,
      inputs.dy as tf.TensorInfo,
      inputs.filter as tf.TensorInfo,
      attrs as unknown as tf.Conv2DBackpropInputAttrs,
    ),
};
