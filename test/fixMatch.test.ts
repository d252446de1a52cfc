import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { resolveTrainConfig, train, TrainConfig } from '../src/train';
import { pseudoLabels, UnlabeledStream } from '../src/train/fixMatch';
import { STRONG_OPS, strongAugment } from '../src/train/randAugment';
import { batchTensor, range } from '../src/preprocess';
import { tempDir } from './tempDirs';
import { tiny, tinySet, weightsOf } from './trainFixtures';

const quiet = { log: false as const };
const base: Partial<TrainConfig> = {
  epochs: 2, batchSize: 16, optimizer: 'sgd', learningRate: 0.05, momentum: 0.9, weightDecay: 5e-4,
  schedule: { kind: 'constant' }, labelSmoothing: 0.1, seed: 3, augmentation: { crop: true, flip: true, pad: 1 },
};
const fixmatch = { method: 'fixmatch' as const, ratio: 1, threshold: 0.4 };
const unlabeledOf = (n: number, seed: string) => ({ ...tinySet(n, 8, 8, 3, seed), labels: undefined });

describe('semi-supervised copycat training (FixMatch, src/train/fixMatch.ts)', function () {
  this.timeout(120000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('strong views: every op keeps the shape, the draw is seeded, the input is left as it was', () => {
    const set = tinySet(6, 8, 8, 3, 'strong');
    const before = set.images.slice();
    const a = strongAugment(set.images, 6, 8, 8, { ops: 2, cutout: 4 }, seedrandom('s'));
    const b = strongAugment(set.images, 6, 8, 8, { ops: 2, cutout: 4 }, seedrandom('s'));
    const c = strongAugment(set.images, 6, 8, 8, { ops: 2, cutout: 4 }, seedrandom('t'));
    assert.deepEqual(set.images, before, 'the input changed');
    assert.deepEqual(a, b, 'same seed, other views');
    assert.notDeepEqual(a, c, 'another seed gave the same views');
    assert.notDeepEqual(a, before, 'nothing was changed');
    for (const [name, op] of Object.entries(STRONG_OPS)) {
      const img = set.images.slice(0, 8 * 8 * 3);
      op(img, 8, 8, 0.9);
      assert.equal(img.length, 192, name);
    }
    const solar = Uint8Array.from([10, 200, 250]);
    STRONG_OPS.solarize(solar, 1, 1, 0.5);
    assert.deepEqual(Array.from(solar), [10, 55, 5], 'solarize inverts values above the threshold (128)');
  });

  it('pseudo-labels: the arg-max of the inference-mode answer, masked by the threshold', async () => {
    const m = tiny(4);
    const set = tinySet(12, 8, 8, 3, 'pl');
    const x = batchTensor(set, range(0, 12));
    const probs = (m.predict(x) as tf.Tensor2D);
    const p = await probs.array();
    const all = pseudoLabels(m, x, false, 0, 0);
    const none = pseudoLabels(m, x, false, 1, 0);
    const mid = Math.max(...p.map((r) => Math.max(...r))) - 1e-4;
    const some = pseudoLabels(m, x, false, mid, 0);
    assert.deepEqual(Array.from(await all.mask.data()), Array(12).fill(1));
    assert.deepEqual(Array.from(await none.mask.data()), Array(12).fill(0));
    assert.equal(Array.from(await some.mask.data()).reduce((s, v) => s + v, 0), p.filter((r) => Math.max(...r) >= mid).length);
    const arg = p.map((r) => r.indexOf(Math.max(...r)));
    assert.deepEqual((await all.targets.argMax(-1).array()), arg);
    [x, probs, all.targets, all.mask, none.targets, none.mask, some.targets, some.mask].forEach((t) => t.dispose());
    m.dispose();
  });

  it('the unlabeled stream walks a seeded order per epoch and reads pool and labeled images', () => {
    const pool = unlabeledOf(5, 'pool-a');
    const labeled = tinySet(3, 8, 8, 3, 'lab');
    const s = new UnlabeledStream(pool, labeled, 7);
    assert.equal(s.size, 8);
    s.startEpoch(0);
    const e0 = s.batch(0, 8);
    s.startEpoch(0);
    assert.deepEqual(s.batch(0, 8), e0, 'the same epoch must give the same batch (resume)');
    const px = 8 * 8 * 3;
    const seen = new Set<string>();
    for (let j = 0; j < 8; j++) seen.add(Buffer.from(e0.subarray(j * px, (j + 1) * px)).toString('hex'));
    assert.equal(seen.size, 8, 'one epoch of size 8 holds every image once');
  });

  it('learns from the pool: another pool gives other weights, the rate of confident answers is recorded, nothing leaks', async () => {
    const data = tinySet(32, 8, 8, 3, 'fm-lab');
    const run = async (cfg: Partial<TrainConfig>, unlabeled?: ReturnType<typeof unlabeledOf>) => {
      const m = tiny(2);
      const start = tf.memory().numTensors;
      const r = await train(m, data, { ...base, ...cfg }, { ...quiet, unlabeled });
      assert.equal(tf.memory().numTensors, start, 'train() with semiSupervised leaked tensors');
      const w = await weightsOf(m);
      m.dispose();
      return { w, r };
    };
    const a = await run({ semiSupervised: fixmatch }, unlabeledOf(40, 'pool-a'));
    const b = await run({ semiSupervised: fixmatch }, unlabeledOf(40, 'pool-b'));
    const diff = a.w.reduce((s, w, i) => s + w.reduce((t, v, j) => t + Math.abs(v - b.w[i][j]), 0), 0);
    assert.ok(diff > 1e-4, `two pools gave the same weights (diff ${diff})`);
    for (const h of a.r.history) assert.ok(h.pseudoLabelRate! >= 0 && h.pseudoLabelRate! <= 1, JSON.stringify(h));
    assert.equal(a.r.config.semiSupervised!.ratio, 1);
    assert.equal(a.r.config.semiSupervised!.strongOps, 2, 'defaults filled in');
    const plain = await run({});
    assert.equal(plain.r.history[0].pseudoLabelRate, undefined);
  });

  it('resumes to the same weights as an uninterrupted run (the unlabeled stream is a function of seed and epoch)', async () => {
    const data = tinySet(32, 8, 8, 3, 'fm-res');
    const pool = unlabeledOf(24, 'pool-r');
    const cfg = { ...base, epochs: 2, semiSupervised: fixmatch };
    const straight = tiny(5);
    await train(straight, data, cfg, { ...quiet, unlabeled: pool });
    const dir = tempDir('cc-fixmatch-ck-');
    const first = tiny(5);
    await train(first, data, { ...cfg, epochs: 1 }, { ...quiet, unlabeled: pool, checkpointDir: dir });
    first.dispose();
    assert.ok(fs.readdirSync(dir).length > 0);
    const resumed = tiny(5);
    const r = await train(resumed, data, cfg, { ...quiet, unlabeled: pool, checkpointDir: dir });
    assert.equal(r.resumedFromEpoch, 1);
    const [ws, wr] = [await weightsOf(straight), await weightsOf(resumed)];
    ws.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - wr[i][j]) < 1e-5, `weight ${i}[${j}]: ${v} vs ${wr[i][j]}`)));
    straight.dispose();
    resumed.dispose();
  });

  it('names what is wrong with a misused recipe', async () => {
    assert.equal(resolveTrainConfig({}).semiSupervised, null);
    assert.throws(() => resolveTrainConfig({ semiSupervised: { method: 'mixmatch' as never } }), /semiSupervised.method must be 'fixmatch'/);
    assert.throws(() => resolveTrainConfig({ semiSupervised: { ...fixmatch, threshold: 2 } }), /semiSupervised.threshold must be in \[0, 1\]/);
    assert.throws(() => resolveTrainConfig({ semiSupervised: fixmatch, mixup: 0.4 }), /cannot be combined with mixup/);
    const m = tiny(1);
    const data = tinySet(16, 8, 8, 3, 'misuse');
    await assert.rejects(train(m, data, { ...base, epochs: 1 }, { ...quiet, unlabeled: unlabeledOf(4, 'u') }), /TrainOptions.unlabeled was given but TrainConfig.semiSupervised is null/);
    await assert.rejects(train(m, data, { ...base, epochs: 1, semiSupervised: { ...fixmatch, includeLabeled: false } }, quiet), /needs TrainOptions.unlabeled/);
    m.dispose();
  });
});
