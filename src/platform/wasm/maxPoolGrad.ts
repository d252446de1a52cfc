import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32 } from './wasmHeap';

/**
 * MaxPool gradient in JS on the wasm heap: route each dy value to the first maximum of its window (the
 * cpu backend's tie rule, which matters after ReLU where whole windows are 0). The package's C version
 * rescans every window per input pixel.
 */
export function maxPoolGradWasm(backend: WasmBackend, dy: tf.TensorInfo, input: tf.TensorInfo, attrs: tf.MaxPoolGradAttrs): tf.TensorInfo {
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: kh, effectiveFilterWidth: kw } = info;
  if (dy.shape[1] !== ho || dy.shape[2] !== wo || dy.shape[3] !== c) {
    throw new Error(`wasm MaxPoolGrad: dy shape [${dy.shape}] does not match the pooled shape [${n},${ho},${wo},${c}]`);
  }
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  const dx = alloc(backend, input.shape);
  const dxv = f32(backend, dx);
  const xv = f32(backend, input);
  const dyv = f32(backend, dy);
  dxv.fill(0);
  // Window outer, channel inner: each channel scans its window with stride c and writes its winner,
  // no per-window scratch arrays.
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < ho; i++) {
      const r0 = Math.max(0, i * sh - padTop);
      const r1 = Math.min(h, i * sh - padTop + kh);
      for (let j = 0; j < wo; j++) {
        const c0 = Math.max(0, j * sw - padLeft);
        const c1 = Math.min(w, j * sw - padLeft + kw);
        if (r1 <= r0 || c1 <= c0) continue;
        const dyBase = ((b * ho + i) * wo + j) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity;
          let where = -1;
          for (let r = r0; r < r1; r++) {
            let at = ((b * h + r) * w + c0) * c + ch;
            for (let col = c0; col < c1; col++, at += c) {
              const v = xv[at];
              if (v > best) {
                best = v;
                where = at;
              }
            }
          }
          // A window of NaN/-Infinity only passes nothing back, as on the cpu backend.
          if (where >= 0) dxv[where] += dyv[dyBase + ch];
        }
      }
    }
  }
  return dx;
}

export const maxPoolGradKernel: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    maxPoolGradWasm(backend as WasmBackend, inputs.dy as tf.TensorInfo, inputs.input as tf.TensorInfo, attrs as unknown as tf.MaxPoolGradAttrs),
};
