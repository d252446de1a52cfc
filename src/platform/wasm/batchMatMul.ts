import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32, free, runOriginal } from './wasmHeap';
import { transpose2d } from './transpose';

/**
 * BatchMatMul with transposed operands, as in every dense-layer gradient (dW = x^T dy, dx = dy W^T).
 * The package sends any transpose to a scalar blocked C loop; only the plain product reaches XNNPACK.
 * We transpose in JS and call the plain product, choosing between C = op(A) op(B) and
 * C = (op(B)^T op(A)^T)^T by the number of floats to move.
 */

type Info = tf.TensorInfo;

function as3d(t: Info, shape: number[]): Info {
  return { dataId: t.dataId, shape: [1, ...shape], dtype: t.dtype };
}

/** A [rows, cols] matrix transposed into a fresh [1, cols, rows] heap tensor. */
function transposed(backend: WasmBackend, t: Info, rows: number, cols: number): Info {
  const out = alloc(backend, [1, cols, rows]);
  transpose2d(f32(backend, t), rows, cols, f32(backend, out));
  return out;
}

/**
 * 'direct': C = op(A) op(B); 'swapped': C = (op(B)^T op(A)^T)^T. Picks the one moving fewer floats
 * (transposes plus XNNPACK's packing of the right operand).
 */
export function matMulPlan(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): 'direct' | 'swapped' {
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n;
  const swapped = (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * n + k * m;
  return direct <= swapped ? 'direct' : 'swapped';
}

export function batchMatMulWasm(backend: WasmBackend, a: Info, b: Info, attrs: tf.BatchMatMulAttrs): Info {
  const { transposeA, transposeB } = attrs;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
  const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
  if ((!transposeA && !transposeB) || batchA !== 1 || batchB !== 1 || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return runOriginal(tf.BatchMatMul, { inputs: { a, b }, backend, attrs: attrs as unknown as tf.NamedAttrMap });
  }
  const [aRows, aCols] = [a.shape[ra - 2], a.shape[ra - 1]];
  const [bRows, bCols] = [b.shape[rb - 2], b.shape[rb - 1]];
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const kb = transposeB ? bCols : bRows;
  const n = transposeB ? bRows : bCols;
  if (k !== kb) {
    throw new Error(`BatchMatMul: inner dimensions ${k} and ${kb} differ (a [${a.shape}], b [${b.shape}], transposeA=${transposeA}, transposeB=${transposeB})`);
  }
  const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const temps: Info[] = [];
  let out: Info;
  if (matMulPlan(m, k, n, transposeA, transposeB) === 'direct') {
    const left = transposeA ? transposed(backend, a, aRows, aCols) : as3d(a, [m, k]);
    const right = transposeB ? transposed(backend, b, bRows, bCols) : as3d(b, [k, n]);
    if (transposeA) temps.push(left);
    if (transposeB) temps.push(right);
    out = runOriginal(tf.BatchMatMul, { inputs: { a: left, b: right }, backend, attrs: { transposeA: false, transposeB: false } });
  } else {
    // C^T = op(B)^T op(A)^T: op(B)^T is B itself when B was transposed, likewise A.
    const left = transposeB ? as3d(b, [n, k]) : transposed(backend, b, bRows, bCols);
    const right = transposeA ? as3d(a, [k, m]) : transposed(backend, a, aRows, aCols);
    if (!transposeB) temps.push(left);
    if (!transposeA) temps.push(right);
    const outT = runOriginal(tf.BatchMatMul, { inputs: { a: left, b: right }, backend, attrs: { transposeA: false, transposeB: false } });
    out = transposed(backend, outT, n, m);
    temps.push(outT);
  }
  free(backend, ...temps);
  return { dataId: out.dataId, shape: outShape, dtype: 'float32' };
}

export const batchMatMulKernel: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    batchMatMulWasm(backend as WasmBackend, inputs.a as Info, inputs.b as Info, attrs as unknown as tf.BatchMatMulAttrs),
};
