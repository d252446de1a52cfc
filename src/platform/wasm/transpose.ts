import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, runOriginal } from './wasmHeap';

/**
 * Transpose in plain JS on the wasm heap. The package's C transpose walks a generic index per element;
 * gradients transpose activations every step (dFilter, dense-layer gradients), so we merge axes that stay
 * adjacent and then copy with the innermost source-contiguous run as the inner loop.
 */

/** Drops size-1 axes and merges axes that stay adjacent and in order under `perm`. */
export function simplifyPermutation(shape: readonly number[], perm: readonly number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((s, i) => (s !== 1 ? i : -1)).filter((i) => i >= 0);
  const permKept = perm.filter((p) => shape[p] !== 1);
  // Renumber kept input axes 0..k-1.
  const rank = new Map(keep.map((axis, i) => [axis, i]));
  let sh = keep.map((a) => shape[a]);
  let pm = permKept.map((p) => rank.get(p) as number);
  // Merge runs p, p+1 that appear consecutively in the output.
  for (let i = pm.length - 1; i > 0; i--) {
    if (pm[i] === pm[i - 1] + 1) {
      const a = pm[i - 1];
      sh[a] *= sh[a + 1];
      sh = sh.filter((_, j) => j !== a + 1);
      pm = pm.filter((_, j) => j !== i).map((p) => (p > a ? p - 1 : p));
    }
  }
  return { shape: sh, perm: pm };
}

/** dst = transpose(src) for a row-major `shape` and TF-style `perm` (output axis i is input axis perm[i]). */
export function transposeInto(src: Float32Array, shape: readonly number[], perm: readonly number[], dst: Float32Array): void {
  const { shape: sh, perm: pm } = simplifyPermutation(shape, perm);
  const n = sh.length;
  if (n <= 1) {
    dst.set(src.subarray(0, dst.length));
    return;
  }
  const inStrides = new Array<number>(n);
  inStrides[n - 1] = 1;
  for (let i = n - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * sh[i + 1];
  const os = pm.map((p) => sh[p]);
  const outStrides = new Array<number>(n);
  outStrides[n - 1] = 1;
  for (let i = n - 2; i >= 0; i--) outStrides[i] = outStrides[i + 1] * os[i + 1];
  if (pm[n - 1] === n - 1) {
    copyRuns(src, sh, pm, inStrides, dst);
    return;
  }
  // Otherwise the copy is a set of 2-D transposes between the input's innermost axis and the output's,
  // tiled so both the reads and the writes stay within cache lines.
  const q = pm.indexOf(n - 1); // output position of the input's innermost axis
  const oi = pm[n - 1]; // input axis that is innermost in the output
  const rows = sh[n - 1];
  const cols = sh[oi];
  const rowOut = outStrides[q];
  const colIn = inStrides[oi];
  const outer: number[] = [];
  for (let i = 0; i < n - 1; i++) if (i !== q) outer.push(i);
  const idx = new Array<number>(outer.length).fill(0);
  const total = outer.reduce((acc, i) => acc * os[i], 1);
  const T = 16;
  for (let t = 0; t < total; t++) {
    let inBase = 0;
    let outBase = 0;
    for (let k = 0; k < outer.length; k++) {
      inBase += idx[k] * inStrides[pm[outer[k]]];
      outBase += idx[k] * outStrides[outer[k]];
    }
    for (let r0 = 0; r0 < rows; r0 += T) {
      const r1 = Math.min(r0 + T, rows);
      for (let c0 = 0; c0 < cols; c0 += T) {
        const c1 = Math.min(c0 + T, cols);
        for (let c = c0; c < c1; c++) {
          const i0 = inBase + c * colIn;
          const o0 = outBase + c;
          for (let r = r0; r < r1; r++) dst[o0 + r * rowOut] = src[i0 + r];
        }
      }
    }
    for (let k = outer.length - 1; k >= 0; k--) {
      if (++idx[k] < os[outer[k]]) break;
      idx[k] = 0;
    }
  }
}

/** The output's innermost axis is the input's: copy contiguous runs in output order. */
function copyRuns(src: Float32Array, sh: number[], pm: number[], inStrides: number[], dst: Float32Array): void {
  const n = sh.length;
  const run = sh[n - 1];
  const idx = new Array<number>(n - 1).fill(0);
  const total = dst.length / run;
  let o = 0;
  for (let t = 0; t < total; t++) {
    let i = 0;
    for (let k = 0; k < n - 1; k++) i += idx[k] * inStrides[pm[k]];
    if (run >= 64) {
      dst.set(src.subarray(i, i + run), o);
      o += run;
    } else {
      for (let r = 0; r < run; r++) dst[o++] = src[i + r];
    }
    for (let k = n - 2; k >= 0; k--) {
      if (++idx[k] < sh[pm[k]]) break;
      idx[k] = 0;
    }
  }
}

/** Cache-blocked 2-D transpose: [rows, cols] -> [cols, rows]. */
export function transpose2d(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(c0 + B, cols);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[base + c];
      }
    }
  }
}

/** Allocates the transposed copy of a float32 tensor on the heap. */
export function transposeHeap(backend: WasmBackend, x: tf.TensorInfo, perm: readonly number[]): tf.TensorInfo {
  const outShape = perm.map((p) => x.shape[p]);
  const out = alloc(backend, outShape);
  // Views after the allocation: it may have grown (and detached) the heap.
  transposeInto(backend.typedArrayFromHeap(x) as Float32Array, x.shape, perm, backend.typedArrayFromHeap(out) as Float32Array);
  return out;
}

export const transposeKernel: tf.KernelConfig = {
  kernelName: tf.Transpose,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) => {
    const x = inputs.x as tf.TensorInfo;
    const perm = (attrs as unknown as tf.TransposeAttrs).perm;
    const b = backend as WasmBackend;
    if (x.dtype !== 'float32') return runOriginal(tf.Transpose, { inputs, backend: b, attrs });
    return transposeHeap(b, x, perm);
  },
};
