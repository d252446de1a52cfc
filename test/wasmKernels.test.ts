import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import {
  prepareWasm,
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
  wasmThreadsInfo,
  WASM_TRAINING_KERNELS,
} from '../src/platform/wasm';
import { matMulPlan } from '../src/platform/wasm/batchMatMul';
import { simplifyPermutation, transposeInto } from '../src/platform/wasm/transpose';
import { leadingAxesCount } from '../src/platform/wasm/sum';

/**
 * Every kernel registered for 'wasm' against the pure-JS 'cpu' backend on the same inputs. Inputs are
 * generated once (seeded, on cpu) as plain arrays and uploaded to each backend.
 */

type Arr = Float32Array | Int32Array | Uint8Array;
type Shape4 = [number, number, number, number];

function maxRelError(ref: Arr, got: Arr): number {
  assert.equal(got.length, ref.length, 'result sizes differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ref[i] - got[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

function seeded(shape: number[], seed: number, zerosEvery = 0): { values: Float32Array; shape: number[] } {
  const values = tf.tidy(() => tf.randomNormal(shape, 0, 1, 'float32', seed).dataSync() as Float32Array).slice();
  // ReLU outputs: many exact zeros make max-pool ties that must route like the cpu backend.
  if (zerosEvery > 0) for (let i = 0; i < values.length; i += zerosEvery) values[i] = 0;
  return { values, shape };
}

/** Runs `f` on one backend with fresh tensors made from `inputs`; returns the outputs' data. */
async function runOn(backend: string, inputs: { values: Float32Array; shape: number[] }[], f: (...ts: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<Arr[]> {
  await tf.setBackend(backend);
  const ts = inputs.map((i) => tf.tensor(i.values, i.shape));
  const out = tf.tidy(() => {
    const r = f(...ts);
    return Array.isArray(r) ? r : [r];
  });
  const data = await Promise.all(out.map((t) => t.data() as Promise<Arr>));
  tf.dispose([...ts, ...out]);
  return data;
}

/** Asserts wasm matches cpu; returns the worst relative error for the log. */
async function compare(label: string, inputs: { values: Float32Array; shape: number[] }[], f: (...ts: tf.Tensor[]) => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<number> {
  const ref = await runOn('cpu', inputs, f);
  const got = await runOn('wasm', inputs, f);
  let worst = 0;
  ref.forEach((r, i) => {
    const e = maxRelError(r, got[i]);
    worst = Math.max(worst, e);
    assert.ok(e < tol, `${label} output ${i}: max relative error ${e} >= ${tol}`);
  });
  return worst;
}

function log(label: string, err: number): void {
  // eslint-disable-next-line no-console
  console.log(`      ${label.padEnd(58)} max rel err ${err.toExponential(2)}`);
}

type Pad = 'same' | 'valid';
const CONV_CASES: [number[], number[], number, Pad][] = [
  [[2, 8, 8, 3], [3, 3, 3, 4], 1, 'same'],
  [[2, 8, 8, 3], [3, 3, 3, 4], 1, 'valid'],
  [[2, 8, 8, 3], [3, 3, 3, 4], 2, 'same'],
  [[2, 9, 9, 3], [3, 3, 3, 4], 2, 'valid'],
  [[2, 10, 10, 3], [3, 3, 3, 4], 2, 'valid'],
  [[2, 8, 8, 5], [1, 1, 5, 6], 1, 'same'],
  [[2, 8, 8, 5], [1, 1, 5, 6], 2, 'same'],
  [[2, 8, 8, 5], [1, 1, 5, 6], 2, 'valid'],
  [[2, 7, 9, 4], [3, 3, 4, 5], 2, 'same'],
  [[1, 8, 8, 2], [5, 5, 2, 3], 2, 'valid'],
  [[2, 8, 8, 3], [1, 3, 3, 4], 1, 'same'],
  [[2, 8, 8, 3], [3, 1, 3, 4], 1, 'valid'],
  [[3, 32, 32, 3], [3, 3, 3, 8], 1, 'same'],
  [[3, 16, 16, 16], [3, 3, 16, 32], 1, 'same'],
  [[4, 16, 16, 8], [3, 3, 8, 16], 2, 'same'],
  // More images than one dFilter chunk holds (chunks of ~4096 grid pixels).
  [[50, 8, 8, 2], [3, 3, 2, 3], 1, 'same'],
];

describe('wasm training kernels vs cpu', function () {
  this.timeout(60000);

  before(async () => {
    await prepareWasm({ threads: 1 });
    registerWasmTrainingKernels();
    await tf.setBackend('wasm');
  });

  after(async () => {
    await tf.setBackend('cpu');
  });

  it('registers every kernel idempotently and can put the originals back', async () => {
    const names = registerWasmTrainingKernels();
    assert.deepEqual(names, WASM_TRAINING_KERNELS.map((k) => k.kernelName));
    assert.deepEqual(registerWasmTrainingKernels(), names);
    assert.ok(names.includes('Conv2DBackpropFilter') && names.includes('Conv2DBackpropInput'));
    unregisterWasmTrainingKernels();
    // The package has no dFilter of its own.
    assert.equal(tf.getKernel('Conv2DBackpropFilter', 'wasm'), undefined);
    assert.ok(tf.getKernel('Conv2DBackpropInput', 'wasm'), 'original Conv2DBackpropInput restored');
    registerWasmTrainingKernels();
    assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'));
  });

  it('COPYCAT_WASM_KERNELS=0 registers nothing', () => {
    const saved = process.env.COPYCAT_WASM_KERNELS;
    process.env.COPYCAT_WASM_KERNELS = '0';
    try {
      assert.deepEqual(registerWasmTrainingKernels(), []);
    } finally {
      if (saved === undefined) delete process.env.COPYCAT_WASM_KERNELS;
      else process.env.COPYCAT_WASM_KERNELS = saved;
    }
  });

  it('reports the thread setup of the running backend', () => {
    const info = wasmThreadsInfo();
    assert.equal(info.threads, 1);
    assert.equal(info.multithread, false);
    assert.equal(typeof info.simd, 'boolean');
  });

  for (const [xs, ws, s, p] of CONV_CASES) {
    const label = `conv x[${xs}] w[${ws}] s${s} ${p}`;
    it(`Conv2DBackpropInput and Conv2DBackpropFilter: ${label}`, async () => {
      const x = seeded(xs, 1);
      const w = seeded(ws, 2);
      const outShape = tf.backend_util.computeConv2DInfo(xs as Shape4, ws as Shape4, s, 1, p).outShape;
      const dy = seeded(outShape, 3);
      const err = await compare(label, [x, w, dy], (xt, wt, dyt) => [
        tf.conv2dTranspose(dyt as tf.Tensor4D, wt as tf.Tensor4D, xs as Shape4, s, p),
        tf.engine().runKernel('Conv2DBackpropFilter', { x: xt, dy: dyt }, {
          strides: s, pad: p, dataFormat: 'NHWC', filterShape: ws,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
      ]);
      log(label, err);
    });
  }

  it('conv gradients through tf.grads (fused conv + bias + relu, as tf.layers trains)', async () => {
    const x = seeded([2, 9, 9, 3], 4);
    const w = seeded([3, 3, 3, 5], 5);
    const bias = seeded([5], 6);
    const err = await compare('fused conv grads', [x, w, bias], (xt, wt, bt) => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.square(tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: 2, pad: 'same', bias: c, activation: 'relu' }))));
      return g([xt, wt, bt]);
    });
    log('fused conv grads', err);
  });

  it('rejects a dy that does not match the forward output', () => {
    const x = tf.zeros([1, 8, 8, 2]);
    const dy = tf.zeros([1, 7, 7, 3]);
    assert.throws(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 2, 3] } as unknown as tf.NamedAttrMap),
      /Conv2DBackpropFilter: dy shape \[1,7,7,3\] does not match the forward output \[1,8,8,3\]/,
    );
    tf.dispose([x, dy]);
  });

  const MATMUL_CASES: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[1, 7, 5], [1, 7, 3], true, false],
    [[3, 50], [40, 50], false, true], // swapped plan
    [[64, 300], [64, 20], true, false], // dense dW
    [[2, 7, 5], [2, 7, 3], true, false], // batch 2: the package's own kernel
  ];
  for (const [as, bs, ta, tb] of MATMUL_CASES) {
    const label = `matMul a[${as}] b[${bs}] tA=${ta} tB=${tb}`;
    it(`BatchMatMul ${label}`, async () => {
      const err = await compare(label, [seeded(as, 7), seeded(bs, 8)], (a, b) => tf.matMul(a, b, ta, tb));
      log(label, err);
    });
  }

  it('BatchMatMul plans cover both formulations', () => {
    assert.equal(matMulPlan(3, 50, 40, false, true), 'swapped');
    assert.equal(matMulPlan(300, 64, 20, true, false), 'direct');
  });

  const POOL_CASES: [number[], number, number, Pad][] = [
    [[2, 8, 8, 3], 2, 2, 'valid'],
    [[2, 9, 9, 3], 3, 2, 'same'],
    [[2, 8, 8, 4], 3, 1, 'same'],
    [[1, 7, 5, 2], 2, 2, 'same'],
  ];
  for (const [xs, k, s, p] of POOL_CASES) {
    const label = `maxPool x[${xs}] k${k} s${s} ${p}`;
    it(`MaxPoolGrad ${label} (with ReLU-style zero ties)`, async () => {
      const x = seeded(xs, 9, 3);
      for (let i = 0; i < x.values.length; i++) x.values[i] = Math.max(0, x.values[i]);
      const pooled = tf.backend_util.computePool2DInfo(xs as Shape4, k, s, 1, p).outShape;
      const dy = seeded(pooled, 14);
      const err = await compare(label, [x, dy], (xt, dyt) =>
        tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, p), dyt)))(xt));
      log(label, err);
    });
  }

  const SUM_CASES: [number[], number[], boolean][] = [
    [[6, 4, 4, 5], [0, 1, 2], false],
    [[6, 4, 4, 5], [0, 1, 2], true],
    [[9, 7], [0], false],
    [[3, 5, 2], [1, 0], false],
    [[6, 4, 5], [2], false], // innermost: the package's kernel
    [[6, 4, 5], [0, 2], false], // mixed: the package's kernel
  ];
  for (const [xs, axes, keep] of SUM_CASES) {
    const label = `sum x[${xs}] axes [${axes}] keepDims=${keep}`;
    it(`Sum ${label}`, async () => {
      const ref = await runOn('cpu', [seeded(xs, 10)], (x) => tf.sum(x, axes, keep));
      const got = await runOn('wasm', [seeded(xs, 10)], (x) => tf.sum(x, axes, keep));
      const err = maxRelError(ref[0], got[0]);
      log(label, err);
      assert.ok(err < 1e-5, `${label}: ${err}`);
      const shape = tf.tidy(() => tf.sum(tf.zeros(xs), axes, keep).shape);
      await tf.setBackend('wasm');
      assert.deepEqual(tf.tidy(() => tf.sum(tf.zeros(xs), axes, keep).shape), shape);
    });
  }

  it('leading-axis detection', () => {
    assert.equal(leadingAxesCount(4, [0, 1, 2]), 3);
    assert.equal(leadingAxesCount(4, [1, 0]), 2);
    assert.equal(leadingAxesCount(4, [1, 2]), 0);
    assert.equal(leadingAxesCount(2, [0, 1]), 0, 'a full reduction stays with the package');
  });

  const PERMS: [number[], number[]][] = [
    [[2, 3, 4, 5], [3, 1, 2, 0]],
    [[2, 3, 4, 5], [1, 2, 0, 3]],
    [[2, 3, 4, 5], [0, 3, 1, 2]],
    [[6, 7], [1, 0]],
    [[2, 1, 3, 4, 2], [4, 2, 0, 1, 3]],
    [[3, 4, 5], [0, 1, 2]],
  ];
  for (const [shape, perm] of PERMS) {
    it(`Transpose [${shape}] perm [${perm}]`, async () => {
      const err = await compare(`transpose ${perm}`, [seeded(shape, 11)], (x) => tf.transpose(x, perm));
      assert.equal(err, 0, 'a transpose copies values exactly');
    });
  }

  it('simplifies permutations by merging adjacent axes and dropping unit axes', () => {
    assert.deepEqual(simplifyPermutation([2, 3, 4, 5], [0, 1, 3, 2]), { shape: [6, 4, 5], perm: [0, 2, 1] });
    assert.deepEqual(simplifyPermutation([2, 1, 5], [2, 1, 0]), { shape: [2, 5], perm: [1, 0] });
    const src = Float32Array.from({ length: 6 }, (_, i) => i);
    const dst = new Float32Array(6);
    transposeInto(src, [2, 3], [1, 0], dst);
    assert.deepEqual([...dst], [0, 3, 1, 4, 2, 5]);
  });

  it('kernels free their wasm heap temporaries (tensor count and backend data ids flat)', async () => {
    await tf.setBackend('wasm');
    const x = tf.randomNormal([3, 9, 9, 4], 0, 1, 'float32', 12) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 4, 6], 0, 1, 'float32', 13) as tf.Tensor4D;
    const step = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.maxPool(tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same')), 2, 2, 'valid')));
        const [gx, gw] = g([x, w]);
        return tf.add(tf.sum(gx), tf.sum(tf.matMul(tf.reshape(gw, [-1, 6]), tf.reshape(gw, [-1, 6]), true, false)));
      });
    step().dispose();
    const tensors = tf.memory().numTensors;
    const ids = tf.backend().numDataIds();
    for (let i = 0; i < 3; i++) step().dispose();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(tf.backend().numDataIds(), ids);
    tf.dispose([x, w]);
  });
});
