import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { logPriorTensor, resolveTrainConfig, train, TrainConfig } from '../src/train';
import { predictProbabilities } from '../src/preprocess';
import { ImageSet } from '../src/types';
import { tinySet, tiny } from './trainFixtures';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 4, batchSize: 16, optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4,
  schedule: { kind: 'constant' }, augmentation: { crop: false, flip: false }, seed: 5,
};

/** The first `keep[k]` images of each class k of `set`: a skewed training set. */
function skewed(set: ImageSet, keep: number[]): ImageSet {
  const idx: number[] = [];
  const seen = keep.map(() => 0);
  for (let i = 0; i < set.n; i++) if (seen[set.labels![i]]++ < keep[set.labels![i]]) idx.push(i);
  const px = set.height * set.width * 3;
  const images = new Uint8Array(idx.length * px);
  idx.forEach((s, d) => images.set(set.images.subarray(s * px, (s + 1) * px), d * px));
  return { ...set, n: idx.length, images, labels: Uint8Array.from(idx, (i) => set.labels![i]) };
}

describe('logit-adjusted loss (TrainConfig.logitAdjustment)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('computes tau * log of the add-one smoothed class frequencies', async () => {
    const t = logPriorTensor(Uint8Array.from([0, 0, 0, 1]), 3, 2);
    const got = Array.from(await t.data());
    [4 / 7, 2 / 7, 1 / 7].forEach((p, k) => assert.ok(Math.abs(got[k] - 2 * Math.log(p)) < 1e-6, `class ${k}: ${got[k]}`));
    assert.deepEqual(t.shape, [1, 3]);
    t.dispose();
    assert.equal(resolveTrainConfig({}).logitAdjustment, 0);
    assert.throws(() => resolveTrainConfig({ logitAdjustment: -1 }), /TrainConfig.logitAdjustment must be a finite number >= 0/);
  });

  it('makes a copy trained on a skewed set answer the rare class more often, without leaking', async () => {
    // Noisy images (the class signal is weak), 40 : 12 : 4 images of classes 0, 1, 2.
    const data = skewed(tinySet(150, 8, 8, 3, 'skew'), [40, 12, 4]);
    const val = tinySet(60, 8, 8, 3, 'balanced-val');
    const rareShare = async (tau: number): Promise<number> => {
      const m = tiny(6);
      const start = tf.memory().numTensors;
      await train(m, data, { ...base, epochs: 12, logitAdjustment: tau }, quiet);
      assert.equal(tf.memory().numTensors, start, `train() with logitAdjustment ${tau} leaked tensors`);
      const p = await predictProbabilities(m, val);
      m.dispose();
      let s = 0;
      for (let i = 0; i < val.n; i++) s += p[i * 3 + 2];
      return s / val.n;
    };
    const [plain, adjusted] = [await rareShare(0), await rareShare(1)];
    assert.ok(adjusted > plain + 0.03, `mean probability of the rare class: ${plain.toFixed(3)} plain, ${adjusted.toFixed(3)} adjusted`);
  });

  it('refuses a model without a logits layer', async () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const flat = tf.layers.flatten().apply(input) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax' }).apply(flat) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: out, name: 'nologits' });
    await assert.rejects(train(m, tinySet(16), { ...base, logitAdjustment: 1 }, quiet), /logitAdjustment needs a model whose last layer is a softmax Activation over logits; 'nologits' ends in Dense/);
    m.dispose();
  });
});
