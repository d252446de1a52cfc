import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { ArchitectureName, createModel, listArchitectures, modelSummary } from '../src/models';
import { train } from '../src/train';

describe('models', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('lists the registry', () => {
    const names = listArchitectures().map((a) => a.name);
    for (const n of ['vgg-small', 'vgg-bn', 'resnet-small', 'resnet-8']) assert.ok(names.includes(n as ArchitectureName), n);
  });

  it('builds every architecture at 32x32 with softmax outputs that sum to 1', () => {
    for (const { name } of listArchitectures()) {
      const m = createModel(name, { seed: 1 });
      assert.deepEqual(m.inputs[0].shape, [null, 32, 32, 3]);
      const y = tf.tidy(() => m.predict(tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 5)) as tf.Tensor2D);
      assert.deepEqual(y.shape, [2, 10]);
      const sums = tf.tidy(() => y.sum(1).arraySync()) as number[];
      sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5, `${name}: row sum ${s}`));
      y.dispose();
      m.dispose();
    }
  });

  it('gives identical weights for the same seed and different weights for another seed', async () => {
    for (const { name } of listArchitectures()) {
      const a = createModel(name, { seed: 42, inputShape: [8, 8, 3], numClasses: 3 });
      const b = createModel(name, { seed: 42, inputShape: [8, 8, 3], numClasses: 3 });
      const c = createModel(name, { seed: 43, inputShape: [8, 8, 3], numClasses: 3 });
      const wa = a.getWeights();
      const wb = b.getWeights();
      const wc = c.getWeights();
      for (let i = 0; i < wa.length; i++) assert.deepEqual(await wa[i].data(), await wb[i].data(), `${name} weight ${i}`);
      const firstKernel = 0;
      assert.notDeepEqual(await wa[firstKernel].data(), await wc[firstKernel].data(), `${name}: seeds 42 and 43 gave the same kernel`);
      [a, b, c].forEach((m) => m.dispose());
    }
    // Two layers of one model never share a random stream (same-shaped kernels differ).
    const r = createModel('resnet-8', { seed: 42 });
    const k1 = r.getLayer('s1b1_conv1').getWeights()[0];
    const k2 = r.getLayer('s1b1_conv2').getWeights()[0];
    assert.deepEqual(k1.shape, k2.shape);
    assert.notDeepEqual(await k1.data(), await k2.data());
    r.dispose();
  });

  it('counts parameters and conv/dense FLOPs (vgg-small checked by hand)', () => {
    const m = createModel('vgg-small');
    const s = modelSummary(m);
    // conv 3->32, 32->32 at 32x32; conv 32->64, 64->64 at 16x16; dense 8*8*64->256->10; x2 per multiply-add.
    const flops = 2 * (1024 * 32 * 9 * 3 + 1024 * 32 * 9 * 32 + 256 * 64 * 9 * 32 + 256 * 64 * 9 * 64 + 4096 * 256 + 256 * 10);
    assert.equal(s.flops, flops);
    const params = (27 * 32 + 32) + (288 * 32 + 32) + (288 * 64 + 64) + (576 * 64 + 64) + (4096 * 256 + 256) + (256 * 10 + 10);
    assert.equal(s.params, params);
    assert.equal(s.trainableParams, params);
    assert.match(s.text, /conv1_1/);
    assert.match(s.text, /FLOPs per image/);
    m.dispose();
    // Batch-norm moving statistics count as parameters but not as trainable ones.
    const vb = createModel('vgg-bn');
    const bn = modelSummary(vb);
    assert.equal(bn.params - bn.trainableParams, 2 * 2 * (64 + 128 + 256));
    vb.dispose();
  });

  it('resnet-small is ResNet-20 (about 0.27 M parameters, about 41 M multiply-adds)', () => {
    const m = createModel('resnet-small');
    const s = modelSummary(m);
    assert.ok(s.trainableParams > 260000 && s.trainableParams < 280000, `${s.trainableParams}`);
    assert.ok(s.flops / 2 > 38e6 && s.flops / 2 < 44e6, `${s.flops}`);
    const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D' && !l.name.endsWith('_proj'));
    assert.equal(convs.length + 1, 20); // 19 convs + the dense layer
    m.dispose();
  });

  it('resnet-9 widths: w32, w48 and w64 have 2x, 3x and 4x the filters of resnet-9; w48 does ~2.25x the FLOPs of w32 with ~9x the parameters of resnet-9, w64 ~1.78x the FLOPs of w48', () => {
    const sums = (['resnet-9', 'resnet-9w32', 'resnet-9w48', 'resnet-9w64'] as ArchitectureName[]).map((a) => {
      const m = createModel(a);
      const s = modelSummary(m);
      const convs = m.layers.filter((l) => l.getClassName() === 'Conv2D').map((l) => (l.getConfig() as { filters: number }).filters);
      m.dispose();
      return { s, convs };
    });
    assert.deepEqual(sums[2].convs, sums[0].convs.map((f) => 3 * f));
    assert.deepEqual(sums[1].convs, sums[0].convs.map((f) => 2 * f));
    // Conv weights and multiply-adds grow with the square of the width (the first conv and the
    // dense layer only linearly, hence the slack).
    const ratio = sums[2].s.flops / sums[1].s.flops;
    assert.ok(ratio > 2.2 && ratio < 2.26, `w48/w32 FLOPs ratio ${ratio}`);
    const pRatio = sums[2].s.trainableParams / sums[0].s.trainableParams;
    assert.ok(pRatio > 8.8 && pRatio < 9, `w48/w16 parameter ratio ${pRatio}`);
    assert.deepEqual(sums[3].convs, sums[0].convs.map((f) => 4 * f));
    const r64 = sums[3].s.flops / sums[2].s.flops;
    assert.ok(r64 > 1.76 && r64 < 1.79, `w64/w48 FLOPs ratio ${r64}`);
  });

  it('trains a registry net for one step (gradients flow through BN, shortcuts and the logits view)', async () => {
    const m = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 3, seed: 2 });
    const before = m.trainableWeights.map((w) => w.read().dataSync().slice());
    const images = new Uint8Array(4 * 8 * 8 * 3).map((_, i) => (i * 37) % 256);
    await train(m, { images, n: 4, height: 8, width: 8, labels: Uint8Array.from([0, 1, 2, 0]) }, { epochs: 1, batchSize: 4 }, { log: false });
    const unchanged = m.trainableWeights.filter((w, i) => w.read().dataSync().every((v, j) => v === before[i][j])).map((w) => w.originalName);
    assert.deepEqual(unchanged, [], 'every trainable weight should receive a gradient');
    m.dispose();
  });

  it('rejects unknown names and bad options', () => {
    assert.throws(() => createModel('vgg-huge' as ArchitectureName), /unknown architecture 'vgg-huge'; expected one of vgg-small/);
    assert.throws(() => createModel('vgg-small', { inputShape: [32, 32] as unknown as [number, number, number] }), /inputShape must be/);
    assert.throws(() => createModel('vgg-small', { numClasses: 1 }), /numClasses must be an integer >= 2/);
  });

  it('attaches L2 regularizers only when weightDecay is given', () => {
    const plain = createModel('resnet-8', { inputShape: [8, 8, 3] });
    const reg = createModel('resnet-8', { inputShape: [8, 8, 3], weightDecay: 5e-4 });
    assert.equal(plain.layers.filter((l) => l.getConfig().kernelRegularizer != null).length, 0);
    const regLayers = reg.layers.filter((l) => l.getConfig().kernelRegularizer != null);
    assert.ok(regLayers.length > 0);
    assert.deepEqual((regLayers[0].getConfig().kernelRegularizer as { config: unknown }).config, { l1: 0, l2: 2.5e-4 });
    plain.dispose();
    reg.dispose();
  });
});
