import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { bootstrapTargets, resolveTrainConfig, train, TrainConfig } from '../src/train';
import { augmentBatch } from '../src/train/augment';
import { range } from '../src/preprocess';
import { tinySet, tiny, weightsOf } from './trainFixtures';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 2, batchSize: 16, optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4,
  schedule: { kind: 'constant' }, labelSmoothing: 0.1, seed: 3,
};

describe('bootstrapping on augmented images (TrainConfig.bootstrap)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('mixes the model\'s label-smoothed arg-max into the rows it is asked to', async () => {
    const y = tf.tensor2d([[1, 0, 0], [0, 1, 0]]);
    const out = tf.tensor2d([[0.1, 0.2, 3], [5, 0, 0]]); // arg-max 2 and 0
    const share = tf.tensor2d([[0.25], [0]]);
    const t = bootstrapTargets(y, out, share, 0.3);
    const got = Array.from(await t.data());
    const own = [0.1, 0.1, 0.8]; // one-hot of class 2, smoothed by 0.3 over 3 classes
    const want = [0.75 + 0.25 * own[0], 0.25 * own[1], 0.25 * own[2], 0, 1, 0];
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-6, `entry ${i}: ${got[i]} vs ${v}`));
    tf.dispose([y, out, share, t]);
  });

  it('flags exactly the images that augmentation changed', () => {
    const set = tinySet(200, 8, 8, 3, 'altered');
    const altered = new Uint8Array(200).fill(7);
    const out = augmentBatch(set, range(0, 200), { crop: true, flip: true, pad: 1, probability: 0.5 }, seedrandom('a'), altered);
    const img = 8 * 8 * 3;
    let changed = 0;
    for (let i = 0; i < 200; i++) {
      const same = out.subarray(i * img, (i + 1) * img).every((v, j) => v === set.images[i * img + j]);
      assert.equal(altered[i], same ? 0 : 1, `image ${i}: flag ${altered[i]}, ${same ? 'unchanged' : 'changed'}`);
      changed += altered[i];
    }
    // About half are drawn for augmentation, and 1 in 18 of those is the identity view (offset 0, no flip).
    assert.ok(changed > 70 && changed < 120, `${changed} of 200 changed`);
    const cut = new Uint8Array(1);
    augmentBatch(set, [0], { crop: false, flip: false, cutout: 2 }, () => 0.5, cut);
    assert.equal(cut[0], 1, 'cutout alone marks the image');
  });

  it('leaves training untouched when no image is augmented, changes it otherwise, and does not leak', async () => {
    const data = tinySet(48, 8, 8, 3, 'boot');
    const run = async (cfg: Partial<TrainConfig>): Promise<Float32Array[]> => {
      const m = tiny(2);
      const start = tf.memory().numTensors;
      await train(m, data, { ...base, ...cfg }, quiet);
      assert.equal(tf.memory().numTensors, start, `train() leaked tensors with ${JSON.stringify(cfg)}`);
      const w = await weightsOf(m);
      m.dispose();
      return w;
    };
    const noAug = { augmentation: { crop: false, flip: false } };
    const plain = await run({ ...noAug, bootstrap: 0 });
    const boot = await run({ ...noAug, bootstrap: 0.5 });
    plain.forEach((w, i) => assert.deepEqual(boot[i], w, `weight ${i} changed although no image was augmented`));
    const aug = { augmentation: { crop: true, flip: true, pad: 1 } };
    const augPlain = await run({ ...aug, bootstrap: 0 });
    const augBoot = await run({ ...aug, bootstrap: 0.5 });
    const diff = augPlain.reduce((s, w, i) => s + w.reduce((t, v, j) => t + Math.abs(v - augBoot[i][j]), 0), 0);
    assert.ok(diff > 1e-3, `bootstrapping augmented images changed the weights by only ${diff}`);
  });

  it('validates its weight and refuses mixup', () => {
    assert.equal(resolveTrainConfig({}).bootstrap, 0);
    assert.throws(() => resolveTrainConfig({ bootstrap: 1.5 }), /TrainConfig.bootstrap must be in \[0, 1\]/);
    assert.throws(() => resolveTrainConfig({ bootstrap: 0.2, mixup: 0.4 }), /bootstrap and TrainConfig.mixup cannot both be on/);
  });
});
