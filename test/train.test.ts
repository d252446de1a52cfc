import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { createModel } from '../src/models';
import { evaluateLoss, fpMathMismatch, learningRateAt, resolveTrainConfig, train, TrainConfig } from '../src/train';
import { batchTensor, range } from '../src/preprocess';
import { augmentBatch } from '../src/train/augment';
import { scaleSchedule } from '../src/train/schedule';
import { classBalancedIndices, classCounts } from '../src/train/sampler';
import { ImageSet } from '../src/types';
import { tempDir } from './tempDirs';
import { tinySet, tiny, weightsOf } from './trainFixtures';
import { teacherTargets } from '../src/train/teacherTargets';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 3, batchSize: 16, optimizer: 'sgd', learningRate: 0.02, weightDecay: 5e-4,
  schedule: { kind: 'constant' }, augmentation: { crop: true, flip: true, pad: 2 }, seed: 7,
};

const tmpDir = (): string => tempDir('copycat-train-');

describe('train', function () {
  this.timeout(60000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('reduces the loss on a tiny seeded problem and reports validation', async () => {
    const data = tinySet(64);
    const val = tinySet(30, 8, 8, 3, 'val');
    const model = tiny();
    const before = await evaluateLoss(model, val);
    const r = await train(model, data, { ...base, epochs: 4, augmentation: { crop: false, flip: false } }, { ...quiet, val });
    assert.equal(r.history.length, 4);
    assert.ok(r.history[3].loss < r.history[0].loss, `loss ${r.history.map((h) => h.loss)}`);
    assert.ok(r.history[3].valLoss! < before.loss, `val loss ${before.loss} -> ${r.history[3].valLoss}`);
    assert.ok(r.history[3].valAccuracy! > 0.6, `val acc ${r.history[3].valAccuracy}`);
    assert.equal(r.resumedFromEpoch, 0);
    assert.equal(r.backend, 'cpu');
    model.dispose();
  });

  it('gives identical weights for the same seed (with augmentation and dropout) and different ones for another seed', async () => {
    const data = tinySet(48);
    const run = async (seed: number) => {
      const m = tiny();
      await train(m, data, { ...base, epochs: 2, seed }, quiet);
      const w = await weightsOf(m);
      m.dispose();
      return w;
    };
    const a = await run(7);
    const b = await run(7);
    const c = await run(8);
    a.forEach((w, i) => assert.deepEqual(w, b[i], `weight ${i} differs between identical runs`));
    assert.ok(a.some((w, i) => w.some((v, j) => v !== c[i][j])), 'another seed should give other weights');
  });

  it('distils from a teacher on the augmented view: weight 1 follows the teacher, weight 0 the stored labels', async () => {
    const data = tinySet(48);
    const calls: number[] = [];
    // A teacher that calls every image class 2, whatever its stored label (and sees the student's batch).
    const teacher = (weight: number) => ({
      weight,
      predict: (x: tf.Tensor4D) => { calls.push(x.shape[0]); return tf.tidy(() => tf.oneHot(tf.fill([x.shape[0]], 2, 'int32'), 3).toFloat() as tf.Tensor2D); },
    });
    const follower = tiny(3);
    const start = tf.memory().numTensors;
    const r1 = await train(follower, data, { ...base, epochs: 4, learningRate: 0.05 }, { ...quiet, teacher: teacher(1) });
    assert.equal(tf.memory().numTensors, start, 'distillation leaked tensors');
    assert.equal(calls.reduce((a, b) => a + b, 0), 4 * 48, 'the teacher sees every augmented image of every epoch');
    const preds = tf.tidy(() => (follower.predict(batchTensor(data, range(0, 48))) as tf.Tensor).argMax(-1).dataSync());
    assert.ok(Array.from(preds).every((p) => p === 2), `weight 1: the student should answer the teacher's class 2, got ${Array.from(preds)}`);
    assert.equal(r1.history[3].accuracy, 1, 'training accuracy is measured against the mixed (teacher) targets');
    // Weight 0: exactly the run without a teacher.
    const a = tiny(4), b = tiny(4);
    await train(a, data, base, quiet);
    await train(b, data, base, { ...quiet, teacher: teacher(0) });
    const [wa, wb] = [await weightsOf(a), await weightsOf(b)];
    assert.ok(wa.every((w, i) => w.every((v, j) => v === wb[i][j])), 'weight 0 must not change training');
    await assert.rejects(train(tiny(5), data, base, { ...quiet, teacher: teacher(1.5) }), /teacher.weight must be in \[0, 1\], got 1.5/);
    [follower, a, b].forEach((m) => m.dispose());
  });

  it('asks the teacher only about altered images with onlyAltered: none altered is exactly no teacher', async () => {
    const data = tinySet(48);
    let asked = 0;
    const teacher = { weight: 1, onlyAltered: true, predict: (x: tf.Tensor4D) => { asked += x.shape[0]; return tf.tidy(() => tf.oneHot(tf.fill([x.shape[0]], 2, 'int32'), 3).toFloat() as tf.Tensor2D); } };
    const plain = { ...base, augmentation: { crop: false, flip: false } };
    const a = tiny(4), b = tiny(4);
    await train(a, data, plain, quiet);
    const start = tf.memory().numTensors;
    await train(b, data, plain, { ...quiet, teacher });
    assert.equal(tf.memory().numTensors, start, 'onlyAltered distillation leaked tensors');
    assert.equal(asked, 0, 'no image was altered, so the teacher must not be asked');
    const [wa, wb] = [await weightsOf(a), await weightsOf(b)];
    assert.ok(wa.every((w, i) => w.every((v, j) => v === wb[i][j])), 'with nothing altered the teacher must not change training');
    // With crop and flip on half the images the teacher sees some images of each epoch, not all.
    await train(tiny(5), data, { ...base, augmentation: { crop: true, flip: true, pad: 2, probability: 0.5 } }, { ...quiet, teacher });
    assert.ok(asked > 0 && asked < 3 * 48, `the teacher should see only the altered images, saw ${asked} of ${3 * 48}`);
    await assert.rejects(train(tiny(6), data, { ...base, mixup: 0.4 }, { ...quiet, teacher }), /teacher.onlyAltered and TrainConfig.mixup cannot both be on/);
    [a, b].forEach((m) => m.dispose());
  });

  it('mixes the teacher into the altered rows only, and leaves the others exactly as stored', () => {
    const stored = tf.tensor2d([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]]);
    const x = tf.zeros([4, 2, 2, 3]) as tf.Tensor4D;
    const seen: number[] = [];
    const predict = (v: tf.Tensor4D) => { seen.push(v.shape[0]); return tf.tidy(() => tf.fill([v.shape[0], 3], 1 / 3) as tf.Tensor2D); };
    const start = tf.memory().numTensors;
    const y = teacherTargets({ predict, weight: 0.5, onlyAltered: true }, x, stored, Uint8Array.from([0, 1, 0, 1]));
    const rows = y.arraySync();
    y.dispose();
    assert.equal(tf.memory().numTensors, start);
    assert.deepEqual(seen, [2]);
    assert.deepEqual(rows[0], [1, 0, 0]);
    assert.deepEqual(rows[2], [0, 0, 1]);
    [[1 / 6, 0.5 + 1 / 6, 1 / 6], [0.5 + 1 / 6, 1 / 6, 1 / 6]].forEach((want, k) => want.forEach((v, j) => assert.ok(Math.abs(rows[2 * k + 1][j] - v) < 1e-6, `row ${2 * k + 1}: ${rows[2 * k + 1]}`)));
    const all = teacherTargets({ predict, weight: 0.5 }, x, stored);
    assert.deepEqual(seen, [2, 4]);
    all.dispose();
    assert.throws(() => teacherTargets({ predict, weight: 0.5, onlyAltered: true }, x, stored), /onlyAltered needs the batch's altered flags/);
    [stored, x].forEach((t) => t.dispose());
  });

  it('keeps tf.memory().numTensors flat across epochs and frees everything it made', async () => {
    const data = tinySet(40);
    const model = tiny();
    const counts: number[] = [];
    const start = tf.memory().numTensors;
    await train(model, data, { ...base, epochs: 4 }, { ...quiet, val: tinySet(10), onEpoch: () => { counts.push(tf.memory().numTensors); } });
    // Epoch 1 creates the optimizer's momentum slots; nothing may grow after that.
    assert.ok(counts.slice(1).every((c) => c === counts[0]), `numTensors per epoch: ${counts}`);
    assert.equal(tf.memory().numTensors, start, 'train() leaked tensors');
    model.dispose();
  });

  it('resumes after a kill at epoch k and ends exactly where an uninterrupted run ends', async () => {
    const data = tinySet(48);
    const val = tinySet(12, 8, 8, 3, 'v');
    const cfg = { ...base, epochs: 3, schedule: { kind: 'step' as const, milestones: [2], gamma: 0.1 } };
    const full = tiny();
    const dirA = tmpDir();
    const ra = await train(full, data, cfg, { ...quiet, val, checkpointDir: dirA });
    const wFull = await weightsOf(full);

    const dirB = tmpDir();
    const killed = tiny();
    await assert.rejects(
      train(killed, data, cfg, { ...quiet, val, checkpointDir: dirB, onEpoch: (r) => { if (r.epoch === 1) throw new Error('simulated kill'); } }),
      /simulated kill/,
    );
    killed.dispose();
    const fresh = tiny(99); // different init: everything must come from the checkpoint
    const rb = await train(fresh, data, cfg, { ...quiet, val, checkpointDir: dirB });
    assert.equal(rb.resumedFromEpoch, 1);
    assert.equal(rb.history.length, 3);
    assert.deepEqual(rb.history.map((h) => h.epoch), [1, 2, 3]);
    const wResumed = await weightsOf(fresh);
    wFull.forEach((w, i) => assert.deepEqual(w, wResumed[i], `weight ${i} differs after resume`));
    assert.equal(rb.history[2].loss, ra.history[2].loss);

    // Calling again with everything done restores and trains nothing.
    const again = await train(fresh, data, cfg, { ...quiet, checkpointDir: dirB });
    assert.equal(again.resumedFromEpoch, 3);
    assert.equal(again.history.length, 3);
    assert.ok(Number.isNaN(again.imagesPerSecond));
    // Only the latest epoch folder is kept.
    assert.deepEqual(fs.readdirSync(dirB).sort(), ['epoch-0003', 'latest.json']);
    full.dispose();
    fresh.dispose();
  });

  it('resumes Adam runs (moments and iteration count restored) to float rounding', async () => {
    const data = tinySet(32);
    const cfg = { ...base, optimizer: 'adam' as const, learningRate: 1e-3, epochs: 2 };
    const a = tiny();
    await train(a, data, cfg, quiet);
    const dir = tmpDir();
    const b = tiny();
    await assert.rejects(train(b, data, cfg, { ...quiet, checkpointDir: dir, onEpoch: () => { throw new Error('kill'); } }), /kill/);
    await train(b, data, cfg, { ...quiet, checkpointDir: dir });
    const wa = await weightsOf(a);
    const wb = await weightsOf(b);
    // tfjs recomputes Adam's bias-correction power as beta^(t+1) on restore instead of the running
    // product it kept, so the resumed run matches to float32 rounding, not bit for bit.
    let maxDiff = 0;
    wa.forEach((w, i) => w.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - wb[i][j])))));
    assert.ok(maxDiff < 1e-5, `max weight difference after Adam resume ${maxDiff}`);
    // A fresh Adam (moments lost) would land visibly elsewhere: the check above can fail.
    const c = tiny();
    await train(c, data, { ...cfg, epochs: 1 }, quiet);
    await train(c, data, { ...cfg, epochs: 1 }, quiet);
    const wc = await weightsOf(c);
    let lostDiff = 0;
    wa.forEach((w, i) => w.forEach((v, j) => (lostDiff = Math.max(lostDiff, Math.abs(v - wc[i][j])))));
    assert.ok(lostDiff > 1e-4, `restarting Adam without its state should differ, got ${lostDiff}`);
    c.dispose();
    a.dispose();
    b.dispose();
  });

  it('stops on an AbortSignal, keeping the finished epochs in the checkpoint', async () => {
    const data = tinySet(48);
    const dir = tmpDir();
    const ac = new AbortController();
    const model = tiny();
    await assert.rejects(
      train(model, data, base, { ...quiet, checkpointDir: dir, signal: ac.signal, onBatch: (p) => { if (p.epoch === 2 && p.batch === 1) ac.abort(); } }),
      (e: Error) => e.name === 'AbortError' && /epoch 2, batch 2/.test(e.message) && /holds 1 finished epoch/.test(e.message),
    );
    const r = await train(model, data, base, { ...quiet, checkpointDir: dir });
    assert.equal(r.resumedFromEpoch, 1);
    assert.equal(r.history.length, 3);
    model.dispose();
  });

  it('refuses to resume a checkpoint made with another config', async () => {
    const data = tinySet(32);
    const dir = tmpDir();
    const model = tiny();
    await train(model, data, { ...base, epochs: 1 }, { ...quiet, checkpointDir: dir });
    await assert.rejects(train(model, data, { ...base, epochs: 2, learningRate: 0.5 }, { ...quiet, checkpointDir: dir }), /different config \(learningRate: 0.02 there, 0.5 now\)/);
    model.dispose();
  });

  it('records each epoch\'s arithmetic and refuses to continue a checkpoint in the other mode', async () => {
    const data = tinySet(32);
    const dir = tmpDir();
    const model = tiny();
    const first = await train(model, data, { ...base, epochs: 1 }, { ...quiet, checkpointDir: dir });
    // The pure-JS backend computes in float32.
    assert.equal(first.history[0].fpmath, 'strict');
    // Make the checkpoint claim bf16 products, as a native run under COPYCAT_FPMATH=bf16 writes it.
    const latest = JSON.parse(fs.readFileSync(path.join(dir, 'latest.json'), 'utf8')) as { dir: string };
    const statePath = path.join(dir, latest.dir, 'state.json');
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
    state.history[0].fpmath = 'bf16';
    fs.writeFileSync(statePath, JSON.stringify(state));
    await assert.rejects(
      train(model, data, { ...base, epochs: 2 }, { ...quiet, checkpointDir: dir }),
      /ran 1 epoch\(s\) with fpmath 'bf16' but this process computes 'strict'; resume with COPYCAT_FPMATH=bf16/,
    );
    // A checkpoint from before the mode was recorded resumes as it is.
    delete state.history[0].fpmath;
    fs.writeFileSync(statePath, JSON.stringify(state));
    const resumed = await train(model, data, { ...base, epochs: 2 }, { ...quiet, checkpointDir: dir });
    assert.equal(resumed.resumedFromEpoch, 1);
    assert.deepEqual(resumed.history.map((h) => h.fpmath), [undefined, 'strict']);
    model.dispose();
  });

  it('fpMathMismatch names the mode the checkpoint ran with', () => {
    const rec = (fpmath?: 'strict' | 'bf16') => ({ epoch: 1, learningRate: 0.1, loss: 1, accuracy: 0.5, seconds: 1, imagesPerSecond: 1, ...(fpmath ? { fpmath } : {}) });
    assert.equal(fpMathMismatch([rec('bf16'), rec('bf16')], 'bf16', 'ck'), undefined);
    assert.equal(fpMathMismatch([rec(), rec()], 'bf16', 'ck'), undefined);
    assert.match(fpMathMismatch([rec(), rec('strict'), rec('strict')], 'bf16', 'ck') ?? '', /ck ran 2 epoch\(s\) with fpmath 'strict' but this process computes 'bf16'; resume with COPYCAT_FPMATH=strict/);
  });

  it('trains on soft labels: one-hot soft targets give exactly the hard-label result', async () => {
    const hard = tinySet(32);
    const soft = new Float32Array(32 * 3);
    for (let i = 0; i < 32; i++) soft[i * 3 + hard.labels![i]] = 1;
    const softOnly: ImageSet = { ...hard, labels: undefined, soft };
    const m1 = tiny();
    const m2 = tiny();
    const r1 = await train(m1, hard, { ...base, epochs: 2 }, quiet);
    const r2 = await train(m2, softOnly, { ...base, epochs: 2 }, quiet);
    assert.deepEqual(r1.history.map((h) => h.loss), r2.history.map((h) => h.loss));
    // Genuinely soft targets train as well.
    const blurred = soft.map((v) => 0.7 * v + 0.1);
    const m3 = tiny();
    const r3 = await train(m3, { ...softOnly, soft: blurred }, { ...base, epochs: 4, augmentation: { crop: false, flip: false } }, quiet);
    assert.ok(r3.history[3].loss < r3.history[0].loss, `soft loss ${r3.history.map((h) => h.loss)}`);
    // Cross-entropy against a 0.8/0.1/0.1 target cannot go below its entropy.
    const entropy = -(0.8 * Math.log(0.8) + 2 * 0.1 * Math.log(0.1));
    assert.ok(r3.history[3].loss > entropy, `loss ${r3.history[3].loss} below target entropy ${entropy}`);
    [m1, m2, m3].forEach((m) => m.dispose());
  });

  it('rejects soft targets that are not probabilities', async () => {
    const d = tinySet(8);
    const model = tiny();
    await assert.rejects(train(model, { ...d, soft: new Float32Array(8 * 3).fill(0.5) }, base, quiet), /data.soft row 0 sums to 1.5/);
    await assert.rejects(train(model, { ...d, soft: new Float32Array(5) }, base, quiet), /data.soft has 5 values, expected n\*numClasses = 24/);
    model.dispose();
  });

  it('stops with a clear message when the loss becomes NaN/Inf', async () => {
    const model = tiny();
    await assert.rejects(
      train(model, tinySet(64), { ...base, learningRate: 1e30, weightDecay: 0 }, quiet),
      /loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d+ \(learning rate 1\.00e\+30\); lower TrainConfig\.learningRate/,
    );
    model.dispose();
  });

  it('trains with class-balanced sampling on imbalanced labels, reproducibly', async () => {
    const data = tinySet(30);
    data.labels!.fill(0, 0, 24); // 24 x class 0 (images keep their own colours: noisy stolen labels)
    const run = async () => {
      const m = tiny();
      const r = await train(m, data, { ...base, epochs: 2, classBalanced: true }, quiet);
      const w = await weightsOf(m);
      m.dispose();
      return { r, w };
    };
    const a = await run();
    const b = await run();
    assert.equal(a.r.history.length, 2);
    assert.ok(a.r.history.every((h) => Number.isFinite(h.loss)));
    a.w.forEach((w, i) => assert.deepEqual(w, b.w[i]));
  });

  it('label smoothing eps equals training on soft targets (1-eps)*onehot + eps/K', async () => {
    const data = tinySet(32);
    const eps = 0.3;
    const soft = new Float32Array(32 * 3).fill(eps / 3);
    for (let i = 0; i < 32; i++) soft[i * 3 + data.labels![i]] += 1 - eps;
    const m1 = tiny();
    const m2 = tiny();
    const m3 = tiny();
    const smoothed = await train(m1, data, { ...base, epochs: 1, labelSmoothing: eps }, quiet);
    const viaSoft = await train(m2, { ...data, labels: undefined, soft }, { ...base, epochs: 1 }, quiet);
    const plain = await train(m3, data, { ...base, epochs: 1 }, quiet);
    assert.ok(Math.abs(smoothed.history[0].loss - viaSoft.history[0].loss) < 1e-5, `${smoothed.history[0].loss} vs ${viaSoft.history[0].loss}`);
    assert.notEqual(smoothed.history[0].loss, plain.history[0].loss);
    [m1, m2, m3].forEach((m) => m.dispose());
  });

  it('refuses a model with built-in L2 regularizers when weightDecay is also set', async () => {
    const m = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 3, seed: 1, weightDecay: 5e-4 });
    await assert.rejects(train(m, tinySet(8), base, quiet), /already has L2 kernel regularizers/);
    const r = await train(m, tinySet(4), { ...base, epochs: 1, batchSize: 2, weightDecay: 0 }, quiet);
    assert.equal(r.history.length, 1);
    m.dispose();
  });

  it('validates the config and data shapes with clear messages', async () => {
    assert.throws(() => resolveTrainConfig({ epochs: 0 }), /TrainConfig.epochs must be a positive integer/);
    assert.throws(() => resolveTrainConfig({ schedule: { kind: 'step', gamma: 0.1 } }), /needs milestones or every/);
    const model = tiny();
    await assert.rejects(train(model, tinySet(4, 6, 6), base, quiet), /images are 6x6x3 but the model expects 8x8x3/);
    const bad = tinySet(4);
    bad.labels![2] = 5;
    await assert.rejects(train(model, bad, base, quiet), /data.labels\[2\] = 5 but the model has 3 classes/);
    model.dispose();
  });

  it('calls onBatch with epoch, batch, loss, img/s and ETA', async () => {
    const seen: { epoch: number; batch: number; batches: number; etaSeconds: number; imagesPerSecond: number }[] = [];
    const model = tiny();
    await train(model, tinySet(40), { ...base, epochs: 2 }, { ...quiet, onBatch: (p) => seen.push(p) });
    assert.equal(seen.length, 2 * 3);
    assert.deepEqual(seen.map((s) => `${s.epoch}.${s.batch}/${s.batches}`), ['1.1/3', '1.2/3', '1.3/3', '2.1/3', '2.2/3', '2.3/3']);
    assert.equal(seen[5].etaSeconds, 0);
    assert.ok(seen[0].etaSeconds > 0 && seen.every((s) => s.imagesPerSecond > 0));
    model.dispose();
  });
});

describe('train helpers', () => {
  it('class-balanced sampler draws every present class equally often', () => {
    const classes = new Uint8Array(100);
    classes.fill(0, 0, 90);
    classes.fill(1, 90, 99);
    classes[99] = 2;
    const order = classBalancedIndices(classes, 4, seedrandom('s'));
    assert.equal(order.length, 100);
    const counts = classCounts(Array.from(order, (i) => classes[i]), 4);
    assert.deepEqual([...counts].slice(0, 3).sort(), [33, 33, 34]);
    assert.equal(counts[3], 0);
    // The minority class is oversampled (its single image repeats), the majority subsampled without repeats.
    const majority = Array.from(order).filter((i) => i < 90);
    assert.equal(new Set(majority).size, majority.length);
  });

  it('step and cosine schedules', () => {
    const step = { kind: 'step' as const, milestones: [2, 4], gamma: 0.1 };
    assert.equal(learningRateAt(1, step, 1, 9, 10, 6), 1);
    assert.ok(Math.abs(learningRateAt(1, step, 2, 0, 10, 6) - 0.1) < 1e-12);
    assert.ok(Math.abs(learningRateAt(1, step, 5, 0, 10, 6) - 0.01) < 1e-12);
    assert.ok(Math.abs(learningRateAt(1, { kind: 'step', every: 3, gamma: 0.5 }, 3, 0, 10, 6) - 0.5) < 1e-12);
    const cos = { kind: 'cosine' as const, warmupEpochs: 1 };
    assert.equal(learningRateAt(2, cos, 0, 0, 4, 5), 0.5); // first warm-up step: 1/4 of the rate
    assert.equal(learningRateAt(2, cos, 1, 0, 4, 5), 2); // warm-up done
    assert.ok(learningRateAt(2, cos, 4, 3, 4, 5) < 0.02); // nearly 0 at the end
    assert.ok(Math.abs(learningRateAt(2, cos, 3, 0, 4, 5) - 1) < 1e-12); // half way through the decay
  });

  it('scales a schedule to a shorter or longer training', () => {
    // The 12-epoch recipe warms up for 2 epochs: a 2-epoch copy warms up for a third of an epoch, not all of it.
    assert.deepEqual(scaleSchedule({ kind: 'cosine', warmupEpochs: 2 }, 12, 2), { kind: 'cosine', warmupEpochs: 2 / 6 });
    assert.deepEqual(scaleSchedule({ kind: 'cosine', warmupEpochs: 2 }, 12, 24), { kind: 'cosine', warmupEpochs: 4 });
    assert.deepEqual(scaleSchedule({ kind: 'step', milestones: [30, 60], gamma: 0.1 }, 90, 9), { kind: 'step', milestones: [3, 6], gamma: 0.1 });
    assert.deepEqual(scaleSchedule({ kind: 'step', every: 10, gamma: 0.5 }, 30, 2), { kind: 'step', every: 1, gamma: 0.5 });
    assert.deepEqual(scaleSchedule({ kind: 'constant' }, 12, 2), { kind: 'constant' });
    assert.throws(() => scaleSchedule({ kind: 'constant' }, 0, 2), /epochs must be > 0/);
  });

  it('flips and pad-crops uint8 images', () => {
    // One 2x3 image, pixel value = 10*(y*3+x)+channel.
    const img = new Uint8Array(2 * 3 * 3).map((_, i) => 10 * Math.floor(i / 3) + (i % 3));
    const set = { images: img, height: 2, width: 3 };
    const flipped = augmentBatch(set, [0], { crop: false, flip: true }, () => 0.1);
    assert.deepEqual(Array.from(flipped.subarray(0, 3)), [20, 21, 22]); // x=0 now holds old x=2
    // crop with pad 1 and rng 0 -> offset (-1,-1): content moves down-right, zeros enter top-left.
    const cropped = augmentBatch(set, [0], { crop: true, flip: false, pad: 1 }, () => 0);
    assert.deepEqual(Array.from(cropped.subarray(0, 3 * 3)), [0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(cropped.subarray(4 * 3, 4 * 3 + 3)), [0, 1, 2]); // (y=1,x=1) <- (0,0)
    const none = augmentBatch(set, [0], { crop: false, flip: false }, () => 0);
    assert.deepEqual(none, img);
  });

  it('cuts out a grey square, clipped at the border, only when asked', () => {
    const set = { images: new Uint8Array(4 * 4 * 3).fill(7), height: 4, width: 4 };
    // rng 0.6 -> centre (2, 2); side 2 -> rows/cols 1..2.
    const cut = augmentBatch(set, [0], { crop: false, flip: false, cutout: 2 }, () => 0.6);
    const grey = (y: number, x: number) => cut[(y * 4 + x) * 3] === 128 && cut[(y * 4 + x) * 3 + 2] === 128;
    const greyPixels = [];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) if (grey(y, x)) greyPixels.push([y, x]);
    assert.deepEqual(greyPixels, [[1, 1], [1, 2], [2, 1], [2, 2]]);
    // rng 0 -> centre (0, 0); side 3 -> rows/cols -1..1, clipped to 0..1.
    const corner = augmentBatch(set, [0], { crop: false, flip: false, cutout: 3 }, () => 0);
    assert.equal(corner.filter((v) => v === 128).length, 4 * 3);
    // Without cutout no extra random draws: the same stream gives the same crops as before.
    let calls = 0;
    augmentBatch(set, [0], { crop: true, flip: true, pad: 1 }, () => (calls++, 0.3));
    assert.equal(calls, 3);
    assert.throws(() => resolveTrainConfig({ augmentation: { crop: true, flip: true, cutout: -1 } }), /augmentation\.cutout/);
  });

  it('augments only the given share of the images', () => {
    const n = 2000;
    const set = { images: new Uint8Array(n * 2 * 3 * 3).map((_, i) => 1 + (i % 200)), height: 2, width: 3 };
    const rng = seedrandom('share');
    const out = augmentBatch(set, range(0, n), { crop: false, flip: true, probability: 0.3 }, rng);
    const img = 2 * 3 * 3;
    let changed = 0;
    for (let b = 0; b < n; b++) if (out.subarray(b * img, (b + 1) * img).some((v, j) => v !== set.images[b * img + j])) changed++;
    // Flipped with probability 0.3 * 0.5 (these 2x3 images are not mirror-symmetric).
    assert.ok(Math.abs(changed / n - 0.15) < 0.03, `share of altered images ${changed / n}, expected about 0.15`);
    assert.deepEqual(augmentBatch(set, range(0, 10), { crop: true, flip: true, probability: 0 }, rng), set.images.subarray(0, 10 * img));
    // At the default share of 1, no extra draw: the same stream as before the option existed.
    let calls = 0;
    augmentBatch(set, [0], { crop: true, flip: true, pad: 1, probability: 1 }, () => (calls++, 0.3));
    assert.equal(calls, 3);
    assert.throws(() => resolveTrainConfig({ augmentation: { crop: true, flip: true, probability: 1.5 } }), /augmentation\.probability must be in \[0, 1\]/);
  });
});
