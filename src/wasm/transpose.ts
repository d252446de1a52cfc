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
  if (n === 2) {
    transpose2d(src, sh[0], sh[1], dst);
    return;
  }
  // Pad to rank 4 with leading unit axes so one loop nest serves ranks 3 and 4; higher ranks recurse on
  // the outermost output axis.
  if (n > 4) {
    const outer = pm[0];
    const innerShape = sh.filter((_, i) => i !== outer);
    const innerPerm = pm.slice(1).map((p) => (p > outer ? p - 1 : p));
    const innerSize = innerShape.reduce((a, b) => a * b, 1);
    const tmpIn = new Float32Array(innerSize);
    for (let k = 0; k < sh[outer]; k++) {
      // Gather the sub-tensor with input axis `outer` fixed to k, then transpose it.
      gatherFixedAxis(src, sh, outer, k, tmpIn);
      transposeInto(tmpIn, innerShape, innerPerm, dst.subarray(k * innerSize, (k + 1) * innerSize));
    }
    return;
  }
  const os = [1, 1, 1, 1];
  const st = [0, 0, 0, 0];
  const off = 4 - n;
  for (let i = 0; i < n; i++) {
    os[off + i] = sh[pm[i]];
    st[off + i] = inStrides[pm[i]];
  }
  const [d0, d1, d2, d3] = os;
  const [s0, s1, s2, s3] = st;
  let o = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++) {
        let i = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++, i += s3) dst[o++] = src[i];
      }
    }
  }
}

function gatherFixedAxis(src: Float32Array, sh: number[], axis: number, k: number, out: Float32Array): void {
  const outer = sh.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = sh.slice(axis + 1).reduce((a, b) => a * b, 1);
  for (let o = 0; o < outer; o++) {
    const s = (o * sh[axis] + k) * inner;
    out.set(src.subarray(s, s + inner), o * inner);
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
