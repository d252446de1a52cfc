import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { drawMixup, mixWithPartner } from '../src/train/mixup';
import { resolveTrainConfig, train, TrainConfig } from '../src/train';
import { tempDir } from './tempDirs';
import { tinySet, tiny, weightsOf } from './trainFixtures';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 2, batchSize: 16, optimizer: 'sgd', learningRate: 0.02, weightDecay: 0,
  schedule: { kind: 'constant' }, augmentation: { crop: false, flip: false }, seed: 3,
};

describe('mixup', () => {
  it('draws lam ~ Beta(alpha, alpha) and a permutation of the batch, reproducibly', () => {
    const a = drawMixup(0.4, 10, seedrandom('s'));
    const b = drawMixup(0.4, 10, seedrandom('s'));
    assert.deepEqual(a, b, 'same stream, same draw');
    assert.deepEqual(Array.from(a.partner).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'partner must be a permutation');
    const rng = seedrandom('many');
    const lams = Array.from({ length: 4000 }, () => drawMixup(0.2, 2, rng).lambda);
    assert.ok(lams.every((l) => l >= 0 && l <= 1));
    const mean = lams.reduce((s, l) => s + l, 0) / lams.length;
    assert.ok(Math.abs(mean - 0.5) < 0.03, `Beta(0.2, 0.2) has mean 1/2, sample mean ${mean}`);
    // Beta(0.2, 0.2) is U-shaped: most mass near 0 and 1 (P(lam < 0.1 or > 0.9) = 0.6 there).
    const ends = lams.filter((l) => l < 0.1 || l > 0.9).length / lams.length;
    assert.ok(ends > 0.5 && ends < 0.7, `share of lam outside [0.1, 0.9]: ${ends}`);
    assert.throws(() => drawMixup(0, 4, rng), /alpha must be a finite number > 0, got 0/);
  });

  it('mixes each row with its partner: lam * t + (1 - lam) * t[partner]', () => {
    const t = tf.tensor2d([[1, 0], [0, 1], [10, 20]]);
    const out = mixWithPartner(t, { lambda: 0.25, partner: Int32Array.from([2, 0, 1]) });
    assert.deepEqual(Array.from(out.dataSync()), [0.25 + 7.5, 15, 0.75, 0.25, 2.5, 5.75]);
    tf.dispose([t, out]);
  });

  it('trains on mixed batches: reproducible, different from no mixup, no leak, the teacher sees the mixed view', async () => {
    const data = tinySet(32);
    const run = async (mixup: number, seen?: number[][]) => {
      const m = tiny();
      const start = tf.memory().numTensors;
      const teacher = seen && {
        weight: 0,
        predict: (x: tf.Tensor4D) => tf.tidy(() => {
          seen.push(Array.from(tf.sum(x, [1, 2, 3]).dataSync()));
          return tf.fill([x.shape[0], 3], 1 / 3) as tf.Tensor2D;
        }),
      };
      const r = await train(m, data, { ...base, mixup }, { ...quiet, teacher });
      assert.equal(tf.memory().numTensors, start, `mixup ${mixup}: train() leaked tensors`);
      const w = await weightsOf(m);
      m.dispose();
      return { w, r };
    };
    const a = await run(0.4);
    const b = await run(0.4);
    const off = await run(0);
    assert.deepEqual(a.w, b.w, 'same seed and alpha, same weights');
    assert.notDeepEqual(a.w, off.w, 'mixup must change training');
    assert.equal(a.r.config.mixup, 0.4, 'the config records alpha');
    assert.throws(() => resolveTrainConfig({ mixup: -1 }), /TrainConfig.mixup must be a finite number >= 0/);
    // Augmentation is off and mixup draws come after the batch order, so both runs see the same batches.
    const mixed: number[][] = [];
    const plain: number[][] = [];
    await run(0.4, mixed);
    await run(0, plain);
    assert.equal(mixed.flat().length, 2 * 32, 'the teacher answers every image of every epoch');
    const total = (rows: number[][]) => rows.map((r) => r.reduce((s, v) => s + v, 0));
    // A convex combination with a permutation of the batch keeps the batch's sum but changes its images.
    total(mixed).forEach((t, i) => assert.ok(Math.abs(t - total(plain)[i]) < 1e-2 * Math.max(1, Math.abs(t)), `batch ${i}: sum ${t} vs ${total(plain)[i]}`));
    assert.ok(mixed.some((r, i) => r.some((v, j) => Math.abs(v - plain[i][j]) > 1e-3)), 'the teacher must see the mixed images, not the originals');
  });

  it('resumes a checkpoint written before the mixup field existed (it counts as mixup 0)', async () => {
    const data = tinySet(32);
    const dir = tempDir('copycat-mixup-');
    await train(tiny(), data, { ...base, epochs: 1 }, { ...quiet, checkpointDir: dir });
    const latest = JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8'));
    const statePath = path.join(dir, latest.dir, 'state.json');
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
    delete state.config.mixup;
    fs.writeFileSync(statePath, JSON.stringify(state));
    const r = await train(tiny(), data, { ...base, epochs: 2 }, { ...quiet, checkpointDir: dir });
    assert.equal(r.resumedFromEpoch, 1);
    await assert.rejects(train(tiny(), data, { ...base, epochs: 3, mixup: 0.2 }, { ...quiet, checkpointDir: dir }), /mixup: 0 there, 0.2 now|mixup: undefined there/);
  });
});
