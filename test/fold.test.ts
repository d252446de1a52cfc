import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { ArchitectureName, createModel } from '../src/models';
import { foldBatchNorm } from '../src/models/fold';

/** Moves every batch-norm statistic and affine weight away from its initial value, deterministically. */
function perturbWeights(model: tf.LayersModel): void {
  let s = 3;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const ws = model.weights.map((w, i) => {
    const v = model.getWeights()[i];
    if (/moving_variance$/.test(w.originalName)) return tf.tensor(Array.from({ length: v.size }, () => 0.2 + 2 * rnd()), v.shape);
    if (/(moving_mean|beta|gamma)$/.test(w.originalName)) return tf.tensor(Array.from({ length: v.size }, () => rnd() - 0.3), v.shape);
    return v.clone();
  });
  model.setWeights(ws);
  tf.dispose(ws);
}

describe('foldBatchNorm (inference copy with BN folded into convolutions)', function () {
  this.timeout(60_000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const arch of ['resnet-9', 'resnet-small', 'vgg-bn'] as ArchitectureName[]) {
    it(`${arch}: same predictions with fewer layers; the original is untouched`, async () => {
      const m = createModel(arch, { seed: 2, inputShape: [8, 8, 3] });
      perturbWeights(m);
      const before = m.getWeights().map((w) => Array.from(w.dataSync()));
      const bnLayers = m.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
      const f = await foldBatchNorm(m);
      assert.ok(f, 'something to fold');
      assert.ok(bnLayers > 0);
      assert.equal(f.layers.filter((l) => l.getClassName() === 'BatchNormalization').length, 0, 'every conv -> BN pair folded');
      assert.ok(f.layers.length < m.layers.length);
      const x = tf.randomNormal([6, 8, 8, 3], 0, 1, 'float32', 7);
      const a = Array.from((m.predict(x) as tf.Tensor).dataSync());
      const b = Array.from((f.predict(x) as tf.Tensor).dataSync());
      const worst = Math.max(...a.map((v, i) => Math.abs(v - b[i])));
      assert.ok(worst < 1e-5, `${arch}: max probability difference ${worst}`);
      m.getWeights().forEach((w, i) => assert.deepEqual(Array.from(w.dataSync()), before[i], `weight ${i} changed`));
      const n0 = tf.memory().numTensors;
      f.dispose();
      assert.ok(tf.memory().numTensors < n0, 'disposing the copy frees its own weights');
      assert.ok((m.predict(x) as tf.Tensor).dataSync().length > 0, 'the original still works after the copy is disposed');
      m.dispose();
    });
  }

  it('returns null for a model without batch norm and for a Sequential model', async () => {
    const plain = createModel('vgg-small', { seed: 1, inputShape: [8, 8, 3] });
    assert.equal(await foldBatchNorm(plain), null);
    const seq = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 3, useBias: false }), tf.layers.batchNormalization(), tf.layers.flatten()] });
    assert.equal(await foldBatchNorm(seq), null);
  });
});
