import { strict as assert } from 'assert';
import { childResult, runChild, skipUnlessNative } from './nativeChild';

interface CaseOut { name: string; maxErr: number; gradErr: number; kernels: string[] }
interface Out { backend?: string; active?: boolean; cases?: CaseOut[]; leaked?: number; error?: string }

/**
 * The inference batch-norm kernel (src/platform/nativeBatchNorm.ts) against batch norm computed by hand in
 * double precision, in a native child process; with COPYCAT_FAST_BN=0 the stock kernel answers the same.
 */
const CHILD = `const b = require('./src/platform/backend');
  const nb = require('./src/platform/nativeBatchNorm');
  const tf = require('@tensorflow/tfjs');
  (async () => {
    await b.initBackend({ prefer: 'tensorflow' });
    let s = 11;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const arr = (n, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (rnd() + 1) / 2 * (hi - lo));
    // y = (x - mean) / sqrt(var + eps) * scale + offset, per channel of the last axis, in float64.
    const byHand = (x, c, m, v, sc, of, eps) => Array.from(x, (xi, i) => { const k = i % c; return (xi - m[k]) / Math.sqrt(v[k] + eps) * (sc ? sc[k] : 1) + (of ? of[k] : 0); });
    const cases = [];
    const configs = [
      { shape: [2, 5, 5, 4], scale: true, offset: true },
      { shape: [2, 5, 5, 4], scale: false, offset: false },
      { shape: [6, 3], scale: true, offset: true },
      { shape: [2, 3, 3, 4], scale: true, offset: true, broadcastStats: true },
    ];
    for (const c of configs) {
      const ch = c.shape[c.shape.length - 1];
      const n = c.shape.reduce((a, d) => a * d, 1);
      const xa = arr(n, -3, 3), m = arr(ch), v = arr(ch, 0.2, 2), sc = c.scale ? arr(ch, 0.5, 1.5) : null, of = c.offset ? arr(ch) : null;
      const statShape = c.broadcastStats ? [1, 1, 1, ch] : [ch];
      const x = tf.tensor(xa, c.shape), mean = tf.tensor(m, statShape), variance = tf.tensor(v, statShape);
      const scale = sc ? tf.tensor(sc, statShape) : undefined, offset = of ? tf.tensor(of, statShape) : undefined;
      const bn = (xx, g, o) => tf.batchNorm(xx, mean, variance, o, g, 1e-3);
      const prof = await tf.profile(() => bn(x, scale, offset));
      const kernels = [...new Set(prof.kernels.map((k) => k.name))].sort();
      const got = bn(x, scale, offset);
      const want = byHand(xa, ch, m, v, sc, of, 1e-3);
      const maxErr = Math.max(...Array.from(got.dataSync(), (g, i) => Math.abs(g - want[i])));
      got.dispose();
      let gradErr = 0;
      if (sc && of && !c.broadcastStats) {
        // tfjs-core's gradient (on the inputs) against the same maths written as separate ops (its gradient
        // fails on rank-4 statistics whichever kernel runs, so only per-channel cases).
        const ref = (xx, g, o) => tf.add(tf.mul(tf.div(tf.sub(xx, mean), tf.sqrt(tf.add(variance, 1e-3))), g), o);
        const loss = (f) => (xx, g, o) => tf.sum(tf.square(f(xx, g, o)));
        const gF = tf.grads(loss(bn))([x, scale, offset]);
        const gR = tf.grads(loss(ref))([x, scale, offset]);
        gradErr = Math.max(...gF.map((g, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(tf.reshape(g, gR[i].shape), gR[i]))).dataSync()[0])));
        tf.dispose([gF, gR]);
      }
      tf.dispose([x, mean, variance, scale, offset]);
      cases.push({ name: JSON.stringify(c), maxErr, gradErr, kernels });
    }
    const x = tf.randomNormal([4, 6, 6, 8]), st = tf.ones([8]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.batchNorm(x, st, st, st, st, 1e-3).dataSync());
    const leaked = tf.memory().numTensors - before;
    console.log('@@' + JSON.stringify({ backend: tf.getBackend(), active: nb.nativeBatchNormActive(), cases, leaked }));
  })().catch((e) => console.log('@@' + JSON.stringify({ error: e.stack })));`;

describe('native inference batch norm', function () {
  this.timeout(120_000);

  it('matches batch norm computed by hand (values and gradients), per channel or broadcast, and leaks nothing', function () {
    skipUnlessNative(this);
    const out = childResult<Out>(runChild(CHILD));
    assert.equal(out.error, undefined);
    assert.equal(out.backend, 'tensorflow');
    assert.equal(out.active, true);
    assert.equal(out.cases!.length, 4);
    for (const c of out.cases!) {
      assert.ok(c.maxErr < 1e-5, `${c.name}: max |batchNorm - by hand| = ${c.maxErr}`);
      assert.ok(c.gradErr < 1e-4, `${c.name}: gradient differs by ${c.gradErr}`);
      // Per-channel statistics take the two-op path (its Rsqrt on the [C] vector shows); the stock kernel runs
      // TensorFlow's one op there (second test). Broadcast statistics fall back to the stock kernel, which
      // uses an Rsqrt of its own, so only their values are checked.
      if (!JSON.parse(c.name).broadcastStats) assert.ok(c.kernels.includes('Rsqrt'), `${c.name}: ran ${c.kernels.join(', ')}`);
    }
    assert.equal(out.leaked, 0);
  });

  it('keeps the stock kernel under COPYCAT_FAST_BN=0, with the same answers', function () {
    skipUnlessNative(this);
    const out = childResult<Out>(runChild(CHILD, { COPYCAT_FAST_BN: '0' }));
    assert.equal(out.error, undefined);
    assert.equal(out.active, false);
    for (const c of out.cases!) assert.ok(c.maxErr < 1e-5, `${c.name}: stock kernel differs from by-hand by ${c.maxErr}`);
    const first = out.cases![0];
    assert.ok(!first.kernels.includes('Rsqrt'), `the stock kernel runs TensorFlow's FusedBatchNorm op, ran ${first.kernels.join(', ')}`);
  });
});
