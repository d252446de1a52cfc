import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { FastBatchNorm } from '../src/models/fastBatchNorm';
import { childResult, runChild, skipUnlessNative } from './nativeChild';

/** Deterministic inputs, written once as source so parent (cpu) and child (native) build the same ones. */
const CASE = String.raw`
  let s = 11;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const fill = (n, scale = 1, shift = 0) => Float32Array.from({ length: n }, () => rnd() * scale + shift);
  const x = tf.tensor4d(fill(4 * 3 * 3 * 5, 3, 2), [4, 3, 3, 5]);
  const c = tf.tensor4d(fill(4 * 3 * 3 * 5), [4, 3, 3, 5]);
  const gamma = tf.tensor1d(fill(5, 0.5, 1));
  const beta = tf.tensor1d(fill(5));
`;

/** Training-mode output, gradients (x, gamma, beta) and moving statistics after two steps of one layer. */
const RUN = String.raw`
  const { FastBatchNorm } = require('./src/models/fastBatchNorm');
  const layer = new FastBatchNorm({ name: 'bn', momentum: 0.9, epsilon: 1e-5 });
  layer.apply(tf.input({ shape: [3, 3, 5] }));
  layer.setWeights([gamma, beta, tf.zeros([5]), tf.ones([5])]);
  const f = (x) => tf.sum(tf.mul(tf.relu(layer.apply(x, { training: true })), c));
  const gradsOf = () => {
    const vars = layer.trainableWeights.map((v) => v.read());
    const { value, grads } = tf.variableGrads(() => f(x), vars);
    value.dispose();
    return vars.map((v) => grads[v.name]);
  };
  const y = layer.apply(x, { training: true });
  const dx = tf.grad(f)(x);
  const [dg, db] = gradsOf();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.tidy(() => { gradsOf().forEach((t) => t.dataSync()); });
  const leaked = tf.memory().numTensors - before;
  const w = layer.getWeights();
  const infer = layer.apply(x, { training: false });
  const out = {
    y: Array.from(y.dataSync()), dx: Array.from(dx.dataSync()), dg: Array.from(dg.dataSync()), db: Array.from(db.dataSync()),
    movingMean: Array.from(w[2].dataSync()), movingVariance: Array.from(w[3].dataSync()), infer: Array.from(infer.dataSync()), leaked,
  };
`;

type Out = { y: number[]; dx: number[]; dg: number[]; db: number[]; movingMean: number[]; movingVariance: number[]; infer: number[]; leaked: number };

function runHere(): Out {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function('tf', 'require', `${CASE}${RUN}; return out;`)(tf, (p: string) => require(p.replace('./src/', '../src/'))) as Out;
}

function close(a: number[], b: number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i]) / Math.max(1, Math.abs(b[i]))));
  assert.ok(worst < tol, `${what}: max relative difference ${worst} >= ${tol}`);
}

describe('FastBatchNorm and the native gradients', function () {
  this.timeout(120_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('matches tf.layers.batchNormalization in training mode: output and gradients', () => {
    const ours = runHere();
    const ref = new Function('tf', `${CASE}
      const layer = tf.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-5 });
      layer.apply(tf.input({ shape: [3, 3, 5] }));
      layer.setWeights([gamma, beta, tf.zeros([5]), tf.ones([5])]);
      const f = (x) => tf.sum(tf.mul(tf.relu(layer.apply(x, { training: true })), c));
      const y = layer.apply(x, { training: true });
      const dx = tf.grad(f)(x);
      const vars = layer.trainableWeights.map((v) => v.read());
      const { grads } = tf.variableGrads(() => f(x), vars);
      const [dg, db] = vars.map((v) => grads[v.name]);
      return { y: Array.from(y.dataSync()), dx: Array.from(dx.dataSync()), dg: Array.from(dg.dataSync()), db: Array.from(db.dataSync()) };`)(tf) as Out;
    close(ours.y, ref.y, 1e-4, 'y');
    close(ours.dx, ref.dx, 1e-3, 'dx');
    close(ours.dg, ref.dg, 1e-3, 'dgamma');
    close(ours.db, ref.db, 1e-3, 'dbeta');
    assert.equal(ours.leaked, 0, 'tensors leaked per training step');
  });

  it('keeps PyTorch-style moving statistics (unbiased variance) and uses them for inference', () => {
    const ours = runHere();
    const t = new Function('tf', `${CASE} return { x: x.arraySync(), gamma: gamma.arraySync(), beta: beta.arraySync() };`)(tf) as { x: number[][][][]; gamma: number[]; beta: number[] };
    // 6 training-mode calls (plain, dx, dgamma/dbeta, 3 in the leak loop), all on the same batch.
    const steps = 6;
    const n = 4 * 3 * 3;
    for (let ch = 0; ch < 5; ch++) {
      const v: number[] = [];
      t.x.forEach((a) => a.forEach((b) => b.forEach((px) => v.push(px[ch]))));
      const mean = v.reduce((p, q) => p + q, 0) / n;
      const unbiased = v.reduce((p, q) => p + (q - mean) ** 2, 0) / (n - 1);
      const keep = 0.9 ** steps;
      assert.ok(Math.abs(ours.movingMean[ch] - (1 - keep) * mean) < 1e-4, `moving mean ch ${ch}`);
      assert.ok(Math.abs(ours.movingVariance[ch] - (keep + (1 - keep) * unbiased)) < 1e-3, `moving variance ch ${ch}`);
      const first = t.x[0][0][0][ch];
      const expect = ((first - ours.movingMean[ch]) / Math.sqrt(ours.movingVariance[ch] + 1e-5)) * t.gamma[ch] + t.beta[ch];
      assert.ok(Math.abs(ours.infer[ch] - expect) < 1e-4, `inference ch ${ch}: ${ours.infer[ch]} vs ${expect}`);
    }
  });

  it('saves as a stock BatchNormalization layer that any TF.js loader reads, with identical predictions', async () => {
    const input = tf.input({ shape: [4, 4, 2] });
    let y = new FastBatchNorm({ name: 'bn', momentum: 0.8, epsilon: 1e-3 }).apply(input) as tf.SymbolicTensor;
    y = tf.layers.flatten().apply(y) as tf.SymbolicTensor;
    y = tf.layers.rescaling({ name: 'logits', scale: 0.125 }).apply(y) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: y });
    m.setWeights([tf.tensor1d([2, 3]), tf.tensor1d([1, -1]), tf.tensor1d([0.5, -0.5]), tf.tensor1d([4, 9])]);
    let saved: tf.io.ModelArtifacts | undefined;
    await m.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const layers = (saved!.modelTopology as { config: { layers: { class_name: string; config: Record<string, unknown> }[] } }).config.layers;
    const bnJson = layers.find((l) => l.config.name === 'bn')!;
    assert.equal(bnJson.class_name, 'BatchNormalization');
    assert.equal(bnJson.config.momentum, 0.8);
    assert.equal(bnJson.config.epsilon, 1e-3);
    assert.deepEqual(saved!.weightSpecs!.map((w) => w.name), ['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance']);
    const back = await tf.loadLayersModel(tf.io.fromMemory(saved!));
    assert.equal(back.getLayer('bn').getClassName(), 'BatchNormalization');
    const x = tf.randomNormal([3, 4, 4, 2], 0, 1, 'float32', 3);
    close(Array.from((back.predict(x) as tf.Tensor).dataSync()), Array.from((m.predict(x) as tf.Tensor).dataSync()), 1e-6, 'predictions');
  });

  it('rejects bad arguments with the layer name', () => {
    assert.throws(() => new FastBatchNorm({ name: 'bn7', momentum: 1 }), /FastBatchNorm bn7: momentum must be in \[0, 1\)/);
  });

  it('native backend: fused batch-norm ops and ReluGrad give the cpu backend\'s outputs, gradients and statistics', function () {
    skipUnlessNative(this);
    const r = runChild(
      `const b = require('./src/platform/backend');
       const tf = require('@tensorflow/tfjs');
       (async () => {
         const rep = await b.initBackend({ prefer: 'tensorflow' });
         ${CASE}${RUN}
         console.log('@@' + JSON.stringify({ backend: tf.getBackend(), ...out }));
       })().catch((e) => console.log('@@' + JSON.stringify({ error: e.message })));`,
    );
    const native = childResult<Out & { backend: string; error?: string }>(r);
    assert.equal(native.error, undefined);
    assert.equal(native.backend, 'tensorflow');
    const ours = runHere();
    for (const k of ['y', 'dx', 'dg', 'db', 'movingMean', 'movingVariance', 'infer'] as const) close(native[k], ours[k], 1e-3, k);
    assert.equal(native.leaked, 0, 'tensors leaked per native training step');
  });
});
