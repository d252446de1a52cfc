import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32, runOriginal } from './wasmHeap';

/**
 * Sum over leading axes (bias gradients: dy [N, H, W, C] summed to [C]). The package transposes the
 * reduced axes to the end with its slow generic transpose first; summing rows in place needs no copy.
 * Other reductions go to the package's kernel.
 */
export function leadingAxesCount(rank: number, axes: number[]): number {
  const sorted = [...axes].sort((p, q) => p - q);
  for (let i = 0; i < sorted.length; i++) if (sorted[i] !== i) return 0;
  return sorted.length < rank ? sorted.length : 0;
}

export function sumWasm(backend: WasmBackend, x: tf.TensorInfo, attrs: tf.SumAttrs): tf.TensorInfo {
  const axes = tf.util.parseAxisParam(attrs.axis, x.shape);
  const lead = x.dtype === 'float32' ? leadingAxesCount(x.shape.length, axes) : 0;
  if (lead === 0) return runOriginal(tf.Sum, { inputs: { x }, backend, attrs: attrs as unknown as tf.NamedAttrMap });
  const rows = tf.util.sizeFromShape(x.shape.slice(0, lead));
  const keptShape = x.shape.slice(lead);
  const cols = tf.util.sizeFromShape(keptShape);
  const outShape = attrs.keepDims ? [...x.shape.slice(0, lead).map(() => 1), ...keptShape] : keptShape;
  const out = alloc(backend, outShape);
  const xv = f32(backend, x);
  // Double accumulators: thousands of rows summed in float32 drift visibly from the cpu backend.
  const acc = new Float64Array(cols);
  // Four rows per pass: bias gradients have few columns, and the short inner loop dominated.
  const rows4 = rows - (rows % 4);
  for (let r = 0; r < rows4; r += 4) {
    const b0 = r * cols;
    const b1 = b0 + cols;
    const b2 = b1 + cols;
    const b3 = b2 + cols;
    for (let j = 0; j < cols; j++) acc[j] += xv[b0 + j] + xv[b1 + j] + xv[b2 + j] + xv[b3 + j];
  }
  for (let r = rows4; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) acc[j] += xv[base + j];
  }
  f32(backend, out).set(acc);
  return out;
}

export const sumKernel: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => sumWasm(backend as WasmBackend, inputs.x as tf.TensorInfo, attrs as unknown as tf.SumAttrs),
};
