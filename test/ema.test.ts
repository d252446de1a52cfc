import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { resolveTrainConfig, train, TrainConfig } from '../src/train';
import { WeightAverage } from '../src/train/ema';
import { tempDir } from './tempDirs';
import { tinySet, tiny, weightsOf } from './trainFixtures';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 3, batchSize: 16, optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4,
  schedule: { kind: 'constant' }, augmentation: { crop: true, flip: true, pad: 2 }, seed: 3,
};

describe('weight average (TrainConfig.ema)', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('folds each step in with the warmed-up decay, batch-norm statistics included', async () => {
    const model = tiny();
    const avg = new WeightAverage(model, 0.99);
    assert.equal(avg.decayAt(0), 0.1);
    assert.equal(avg.decayAt(1000), 0.99);
    const w0 = await weightsOf(model);
    // Move every weight (moving mean/variance too) to w0 + 1, then fold in step 0: 0.1*w0 + 0.9*(w0 + 1).
    model.setWeights(model.getWeights().map((w) => tf.tidy(() => tf.add(w, 1))));
    avg.update(0);
    const raw = await weightsOf(model);
    const inside = await avg.withAverage(async () => weightsOf(model));
    assert.equal(inside.length, model.weights.length);
    assert.ok(model.weights.some((w) => /moving_mean/.test(w.name)), 'the fixture has batch-norm statistics');
    inside.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - (w0[i][j] + 0.9)) < 1e-5, `weight ${i}[${j}]: ${v} vs ${w0[i][j] + 0.9}`)));
    // withAverage puts the raw weights back.
    const after = await weightsOf(model);
    after.forEach((w, i) => assert.deepEqual(w, raw[i], `weight ${i} not restored`));
    avg.dispose();
    model.dispose();
  });

  it('returns the average, records both accuracies, leaks nothing, and is off by default', async () => {
    assert.equal(resolveTrainConfig({}).ema, 0);
    assert.throws(() => resolveTrainConfig({ ema: 1 }), /TrainConfig.ema must be 0 \(off\) or a decay in \(0, 1\)/);
    const data = tinySet(48);
    const val = tinySet(15, 8, 8, 3, 'val');
    const plain = tiny(4);
    const rPlain = await train(plain, data, base, { ...quiet, val });
    assert.equal(rPlain.history[2].emaValAccuracy, undefined);

    const averaged = tiny(4);
    const counts: number[] = [];
    const start = tf.memory().numTensors;
    const r = await train(averaged, data, { ...base, ema: 0.9 }, { ...quiet, val, onEpoch: () => { counts.push(tf.memory().numTensors); } });
    assert.equal(tf.memory().numTensors, start, 'train() with ema leaked tensors');
    assert.ok(counts.slice(1).every((c) => c === counts[0]), `numTensors per epoch: ${counts}`);
    // The raw weights follow the same path as without the average (it only reads them).
    r.history.forEach((h, i) => assert.equal(h.loss, rPlain.history[i].loss, `epoch ${i + 1} loss`));
    assert.equal(r.history[2].valAccuracy, rPlain.history[2].valAccuracy);
    assert.ok(r.history.every((h) => typeof h.emaValAccuracy === 'number' && typeof h.emaValLoss === 'number'));
    // What the run hands back is the average, not the raw weights.
    const [wRaw, wAvg] = [await weightsOf(plain), await weightsOf(averaged)];
    assert.ok(wRaw.some((w, i) => w.some((v, j) => v !== wAvg[i][j])), 'the returned model should hold the average');
    plain.dispose();
    averaged.dispose();
  });

  it('resumes with the saved average and ends exactly where an uninterrupted run ends', async () => {
    const data = tinySet(48);
    const cfg = { ...base, ema: 0.9 };
    const full = tiny();
    const ra = await train(full, data, cfg, { ...quiet, checkpointDir: tempDir('copycat-ema-') });
    const dir = tempDir('copycat-ema-');
    const killed = tiny();
    await assert.rejects(
      train(killed, data, cfg, { ...quiet, checkpointDir: dir, onEpoch: (h) => { if (h.epoch === 2) throw new Error('simulated kill'); } }),
      /simulated kill/,
    );
    killed.dispose();
    const fresh = tiny(99);
    const rb = await train(fresh, data, cfg, { ...quiet, checkpointDir: dir });
    assert.equal(rb.resumedFromEpoch, 2);
    const [wa, wb] = [await weightsOf(full), await weightsOf(fresh)];
    wa.forEach((w, i) => assert.deepEqual(w, wb[i], `averaged weight ${i} differs after resume`));
    assert.equal(rb.history[2].loss, ra.history[2].loss);
    // A checkpoint of a run without the average cannot be resumed with one.
    const plainDir = tempDir('copycat-ema-');
    await train(tiny(), data, { ...base, epochs: 1 }, { ...quiet, checkpointDir: plainDir });
    await assert.rejects(train(tiny(), data, cfg, { ...quiet, checkpointDir: plainDir }), /different config \(ema: undefined there|ema: 0 there/);
    full.dispose();
    fresh.dispose();
  });
});
