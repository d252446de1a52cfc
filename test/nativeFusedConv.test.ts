import { strict as assert } from 'assert';
import { childResult, runChild, skipUnlessNative } from './nativeChild';

interface CaseOut { name: string; maxErr: number; gradErr: number; kernels: string[] }
interface Out { backend?: string; active?: boolean; cases?: CaseOut[]; leaked?: number; error?: string }

/**
 * The _FusedConv2D kernel (src/platform/nativeFusedConv.ts, patched tfjs-node binding) against the same math
 * written as separate ops, in a native child process.
 */
describe('native fused Conv2D + bias + ReLU', function () {
  this.timeout(120_000);

  it('matches conv2d + add + relu (values and gradients) in one kernel, falls back where TF differs, leaks nothing', function () {
    skipUnlessNative(this);
    const r = runChild(
      `const b = require('./src/platform/backend');
       const f = require('./src/platform/nativeFusedConv');
       const tf = require('@tensorflow/tfjs');
       (async () => {
         await b.initBackend({ prefer: 'tensorflow' });
         let s = 7;
         const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
         const t = (shape) => tf.tensor(Float32Array.from({ length: shape.reduce((a, c) => a * c, 1) }, rnd), shape);
         const cases = [];
         const configs = [];
         for (const pad of ['same', 'valid']) for (const stride of [1, 2]) for (const activation of ['relu', 'linear']) configs.push({ pad, stride, activation, bias: true, dilation: 1 });
         configs.push({ pad: 'same', stride: 1, activation: 'relu', bias: false, dilation: 1 });
         configs.push({ pad: 'same', stride: 1, activation: 'elu', bias: true, dilation: 1 });
         configs.push({ pad: 'same', stride: 1, activation: 'relu', bias: true, dilation: 2 });
         for (const c of configs) {
           const x = t([3, 9, 9, 4]), w = t([3, 3, 4, 6]), bias = c.bias ? t([6]) : undefined;
           const act = (y) => c.activation === 'relu' ? tf.relu(y) : c.activation === 'elu' ? tf.elu(y) : y;
           const ref = (xx, ww) => act(bias ? tf.add(tf.conv2d(xx, ww, c.stride, c.pad, 'NHWC', c.dilation), bias) : tf.conv2d(xx, ww, c.stride, c.pad, 'NHWC', c.dilation));
           const fused = (xx, ww) => tf.fused.conv2d({ x: xx, filter: ww, strides: c.stride, pad: c.pad, dilations: c.dilation, bias, activation: c.activation });
           const prof = await tf.profile(() => fused(x, w));
           const kernels = [...new Set(prof.kernels.map((k) => k.name))].sort();
           const err = (a, b) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
           const maxErr = tf.tidy(() => err(fused(x, w), ref(x, w)));
           let gradErr = 0; // tfjs has no conv gradient for dilations > 1
           if (c.dilation === 1) {
             const gF = tf.grads((xx, ww) => tf.sum(tf.mul(fused(xx, ww), fused(xx, ww))))([x, w]);
             const gR = tf.grads((xx, ww) => tf.sum(tf.mul(ref(xx, ww), ref(xx, ww))))([x, w]);
             gradErr = Math.max(err(gF[0], gR[0]), err(gF[1], gR[1]));
             tf.dispose([gF, gR]);
           }
           tf.dispose([x, w, bias]);
           cases.push({ name: JSON.stringify(c), maxErr, gradErr, kernels });
         }
         const x = t([2, 8, 8, 3]), w = t([3, 3, 3, 5]), bias = t([5]);
         const before = tf.memory().numTensors;
         for (let i = 0; i < 5; i++) tf.tidy(() => tf.fused.conv2d({ x, filter: w, strides: 1, pad: 'same', bias, activation: 'relu' }).dataSync());
         const leaked = tf.memory().numTensors - before;
         console.log('@@' + JSON.stringify({ backend: tf.getBackend(), active: f.nativeFusedConvActive(), cases, leaked }));
       })().catch((e) => console.log('@@' + JSON.stringify({ error: e.stack })));`,
    );
    const out = childResult<Out>(r);
    assert.equal(out.error, undefined);
    assert.equal(out.backend, 'tensorflow');
    assert.equal(out.active, true, 'the addon should take list attributes (patched binding, npm run setup:tensorflow)');
    assert.equal(out.cases!.length, 11);
    for (const c of out.cases!) {
      assert.ok(c.maxErr < 1e-4, `${c.name}: max |fused - reference| = ${c.maxErr}`);
      assert.ok(c.gradErr < 1e-3, `${c.name}: gradient differs by ${c.gradErr}`);
      const cfg = JSON.parse(c.name) as { activation: string; bias: boolean; dilation: number };
      const fusable = cfg.bias && cfg.dilation === 1 && cfg.activation !== 'elu';
      // The stock kernel shows its bias Add / activation as separate kernels; the fused one does not.
      const separate = c.kernels.filter((k) => ['Add', 'Relu', 'Elu', 'Conv2D'].includes(k));
      if (fusable) assert.deepEqual(separate, [], `${c.name}: ran ${c.kernels.join(', ')}`);
      else assert.ok(separate.length > 0, `${c.name} should use the stock kernel, ran ${c.kernels.join(', ')}`);
    }
    assert.equal(out.leaked, 0);
  });
});
