import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { ensembleProbabilities, evaluateEnsemble, mirrorImages, testTimeViews, type TestTimeView } from '../src/copycatEnsemble';
import { modelFingerprint, VIEW_CACHE_DIR, viewProbabilityCache } from '../src/experiments/viewProbabilityCache';
import { augmentBatch, shiftImages } from '../src/train/augment';
import { predictProbabilities, range } from '../src/preprocess';
import { openRun } from '../src/run';
import { scoreCopycatEnsemble, viewsSuffix } from '../src/experiments/ensembleStep';
import * as fs from 'fs';
import * as path from 'path';
import { distilCopycat, distillationRecipeDifference, teacherKey, type DistillationRecipe } from '../src/experiments/distillation';
import { memberRecipe } from '../src/experiments/seedMembers';
import { saveModel } from '../src/io';
import { copycatTrainFor, fitBudgets } from '../src/experiments/trainLength';
import { epochsFor } from '../src/experiments/queryBudget';
import { randomImages, tinyModel, tmpDir } from './oracleFixtures';

const close = (a: Float32Array, b: Float32Array) => a.every((x, i) => Math.abs(x - b[i]) < 1e-5);

describe('copycat ensemble', () => {
  const set = randomImages(20, 8, 'ens');
  const a = tinyModel(8, 10, 1);
  const b = tinyModel(8, 10, 2);
  after(() => {
    a.dispose();
    b.dispose();
  });

  it('mirrors images left-right, and twice is the identity', () => {
    const m = mirrorImages(set);
    // Pixel (y=0, x=0) of image 0 is now pixel (0, 7) of the original.
    assert.deepEqual(Array.from(m.images.subarray(0, 3)), Array.from(set.images.subarray(7 * 3, 8 * 3)));
    assert.notDeepEqual(m.images, set.images);
    assert.deepEqual(mirrorImages(m).images, set.images);
  });

  it('shifts images with a black border, the same view the training crop gives for that offset', () => {
    const px = (imgs: Uint8Array, img: number, y: number, x: number) => Array.from(imgs.subarray((img * 64 + y * 8 + x) * 3, (img * 64 + y * 8 + x) * 3 + 3));
    const s = shiftImages(set, 0, 2, false);
    assert.deepEqual(px(s, 3, 5, 0), px(set.images, 3, 5, 2));
    assert.deepEqual(px(s, 3, 5, 6), [0, 0, 0]);
    const up = shiftImages(set, -1, 0, false);
    assert.deepEqual(px(up, 0, 0, 4), [0, 0, 0]);
    assert.deepEqual(px(up, 0, 1, 4), px(set.images, 0, 0, 4));
    // A constant draw of 5.5/9 makes augmentBatch crop at offset (+1, +1) of a 4-pixel pad; 0.9 then skips its flip.
    const draws = [5.5 / 9, 5.5 / 9, 0.9];
    let i = 0;
    const cropped = augmentBatch(set, range(0, set.n), { crop: true, flip: true }, () => draws[i++ % 3]);
    assert.deepEqual(shiftImages(set, 1, 1, false), cropped);
    assert.deepEqual(shiftImages(set, 0, 0, true), mirrorImages(set).images);
  });

  it('lists the test-time views: the image first, four shifts, and their mirrors', () => {
    assert.deepEqual(testTimeViews({}), [{ dy: 0, dx: 0, flip: false }]);
    assert.equal(testTimeViews({ flip: true }).length, 2);
    assert.deepEqual(testTimeViews({ shift: 2 }).map((v) => [v.dy, v.dx]), [[0, 0], [-2, 0], [2, 0], [0, -2], [0, 2]]);
    const both = testTimeViews({ flip: true, shift: 1 });
    assert.equal(both.length, 10);
    assert.equal(new Set(both.map((v) => JSON.stringify(v))).size, 10);
    assert.deepEqual([{}, { flip: true }, { shift: 2 }, { flip: true, shift: 2 }].map(viewsSuffix), ['', '-flip', '-shift2', '-flip-shift2']);
    assert.throws(() => testTimeViews({ shift: 1.5 }), /whole number of pixels >= 0, got 1.5/);
    assert.throws(() => testTimeViews({ shift: -1 }), /got -1/);
  });

  it('averages the members, and with flip also each member on the mirrored images', async () => {
    const pa = await predictProbabilities(a, set);
    const pb = await predictProbabilities(b, set);
    const pam = await predictProbabilities(a, mirrorImages(set));
    const both = await ensembleProbabilities([a, b], set);
    assert.ok(close(both, pa.map((x, i) => (x + pb[i]) / 2)));
    const flipped = await ensembleProbabilities([a], set, { flip: true });
    assert.ok(close(flipped, pa.map((x, i) => (x + pam[i]) / 2)));
    assert.ok(!close(flipped, pa), 'the mirrored view must change something for a dense model on random pixels');
    const shifted = await ensembleProbabilities([a], set, { shift: 1 });
    const views = await Promise.all([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]].map(([dy, dx]) => predictProbabilities(a, { ...set, images: shiftImages(set, dy, dx, false) })));
    assert.ok(close(shifted, pa.map((_, i) => views.reduce((t, v) => t + v[i], 0) / 5)));
    await assert.rejects(ensembleProbabilities([], set), /no models/);
    // onMember sees each member's plain-view probabilities, once, and scribbling on them leaves the mean as it was.
    const seen: [number, Float32Array][] = [];
    const again = await ensembleProbabilities([a, b], set, { flip: true, onMember: (k, p) => { seen.push([k, Float32Array.from(p)]); p.fill(0); } });
    assert.deepEqual(seen.map(([k]) => k), [0, 1]);
    assert.ok(close(seen[0][1], pa) && close(seen[1][1], pb));
    const pbm = await predictProbabilities(b, mirrorImages(set));
    assert.ok(close(again, pa.map((x, i) => (x + pam[i] + pb[i] + pbm[i]) / 4)));
  });

  it('reads views from the view cache instead of predicting them, and fills it with what it predicts', async () => {
    const stored = new Map<string, Float32Array>();
    const key = (k: number, v: TestTimeView) => `${k} ${v.dy} ${v.dx} ${v.flip}`;
    const filling = { get: (k: number, v: TestTimeView) => stored.get(key(k, v)), put: (k: number, v: TestTimeView, p: Float32Array) => { stored.set(key(k, v), Float32Array.from(p)); } };
    const plain = await ensembleProbabilities([a, b], set, { flip: true });
    assert.deepEqual(await ensembleProbabilities([a, b], set, { flip: true, viewCache: filling }), plain);
    assert.deepEqual([...stored.keys()].sort(), ['0 0 0 false', '0 0 0 true', '1 0 0 false', '1 0 0 true']);
    // Served from the cache, bit for bit the same mean.
    assert.deepEqual(await ensembleProbabilities([a, b], set, { flip: true, viewCache: filling }), plain);
    // A cached view is not predicted: a planted answer for model b's mirrored view shows in the mean.
    const planted = new Float32Array(set.n * 10).fill(0.1);
    stored.set('1 0 0 true', planted);
    const pa = (await ensembleProbabilities([a], set, { flip: true })).map((x) => x * 2);
    const pb = await predictProbabilities(b, set);
    const mixed = await ensembleProbabilities([a, b], set, { flip: true, viewCache: filling });
    assert.ok(close(mixed, pa.map((x, i) => (x + pb[i] + 0.1) / 4)));
  });

  it('keeps cached view probabilities per model weights, test images, view and arithmetic', async () => {
    const dir = tmpDir('view-cache');
    const run = openRun({ profile: 'smoke', dir });
    const model = path.join(dir, 'copy');
    await saveModel(a, model);
    const logs: string[] = [];
    const make = (arith = 'tensorflow strict') => viewProbabilityCache(run, [model], set.images, () => set.n * 10, arith, (s) => logs.push(s));
    const v0 = { dy: 0, dx: 0, flip: false };
    const probs = await predictProbabilities(a, set);
    const first = make();
    assert.equal(first.get(0, v0), undefined);
    first.put(0, v0, probs);
    assert.equal(first.misses, 1);
    const files = fs.readdirSync(path.join(dir, VIEW_CACHE_DIR));
    assert.equal(files.length, 1);
    // A new process (a new cache object) reads it back exactly.
    const second = make();
    assert.deepEqual(second.get(0, v0), probs);
    assert.equal(second.hits, 1);
    assert.equal(second.get(0, { ...v0, flip: true }), undefined);
    assert.equal(make('tensorflow bf16 on AMX').get(0, v0), undefined);
    assert.equal(viewProbabilityCache(run, [model], mirrorImages(set).images, () => set.n * 10, 'tensorflow strict').get(0, v0), undefined);
    // Other weights in the same directory (a copy trained again) are another model.
    const before = modelFingerprint(model);
    await saveModel(b, model);
    assert.notEqual(modelFingerprint(model), before);
    assert.equal(make().get(0, v0), undefined);
    await saveModel(a, model);
    assert.deepEqual(make().get(0, v0), probs);
    // A file of the wrong length (a crash, another model's output size) is predicted again, not trusted.
    fs.writeFileSync(path.join(dir, VIEW_CACHE_DIR, files[0]), Buffer.alloc(12));
    assert.equal(make().get(0, v0), undefined);
    assert.match(logs.join('\n'), /holds 12 bytes, expected 800; predicting again/);
  });

  it('scores the ensemble and leaks no tensor', async () => {
    const labelled = { ...set, labels: new Uint8Array(set.n).map((_, i) => i % 10) };
    const ev0 = await evaluateEnsemble([a, b], labelled, { flip: true, shift: 2 });
    const before = tf.memory().numTensors;
    const ev = await evaluateEnsemble([a, b], labelled, { flip: true, shift: 2 });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(ev.predictions, ev0.predictions);
    const expected = ev.predictions.filter((p, i) => p === labelled.labels[i]).length / set.n;
    assert.equal(ev.metrics.accuracy, expected);
  });

  it('names a member directory that holds no saved model', async () => {
    const run = openRun({ profile: 'smoke', dir: tmpDir('ens-run') });
    await assert.rejects(scoreCopycatEnsemble(run, ['/nonexistent/model'], { name: 'x' }), /ensemble member '\/nonexistent\/model': no model\.json/);
    await assert.rejects(distilCopycat(run, ['/nonexistent/model'], { name: 'x', weight: 0.5 }), /teacher '\/nonexistent\/model': no model\.json/);
  });

  it('tells distillation recipes apart: teachers, weight, length, student recipe', () => {
    const run = openRun({ profile: 'smoke', dir: tmpDir('distil-run') });
    const r: DistillationRecipe = { student: memberRecipe(run, 'NPD-SL', 'strict'), teachers: ['/m/a', '/m/b'], weight: 0.5, epochs: null, seed: 1 };
    assert.equal(distillationRecipeDifference(r, JSON.parse(JSON.stringify(r)) as DistillationRecipe), '');
    assert.equal(distillationRecipeDifference(r, { ...r, teachers: ['/m/a'] }), 'teachers: /m/a,/m/b there, /m/a now');
    assert.equal(distillationRecipeDifference(r, { ...r, weight: 1, epochs: 22, seed: 5 }), "weight: 0.5 there, 1 now; seed: 1 there, 5 now; epochs: the profile's there, 22 now");
    assert.equal(distillationRecipeDifference(r, { ...r, student: memberRecipe(run, 'NPD-SL', 'bf16') }), 'fpmath: strict there, bf16 now (COPYCAT_FPMATH)');
    // Recipes written before --teacher-on existed asked the teachers about every image.
    assert.equal(distillationRecipeDifference(r, { ...r, teacherOn: 'altered' }), 'teacher-on: all there, altered now');
  });

  it('names teachers inside the run relative to it, so a restored run elsewhere still matches its recipe', () => {
    assert.equal(teacherKey({ dir: '/a/run' }, '/a/run/experiments/members/g/s1/model'), 'experiments/members/g/s1/model');
    assert.equal(teacherKey({ dir: '/a/run' }, '/b/other/model'), '/b/other/model');
    assert.equal(teacherKey({ dir: '/a/run' }, '/a/run-2/model'), '/a/run-2/model');
  });

  it('refuses to resume a distillation run with another recipe, before loading any data', async () => {
    const dir = tmpDir('distil-run');
    const run = openRun({ profile: 'smoke', dir });
    const teacher = path.join(dir, 'teacher');
    await saveModel(a, teacher);
    const started: DistillationRecipe = { student: memberRecipe(run, 'NPD-SL'), teachers: [path.resolve(teacher)], weight: 0.3, epochs: null, seed: 1 };
    const runDir = run.path('experiments', 'distillation', 'x');
    fs.mkdirSync(runDir, { recursive: true });
    fs.writeFileSync(path.join(runDir, 'recipe.json'), JSON.stringify(started));
    const allow = process.env.COPYCAT_ALLOW_PURE_JS;
    process.env.COPYCAT_ALLOW_PURE_JS = '1'; // the check under test comes after the backend check
    try {
      // The recipe was written with the teacher's absolute path (as before teachers were stored relative to
      // the run): only the weight is reported as different.
      await assert.rejects(distilCopycat(run, [teacher], { name: 'x', weight: 0.5 }), /distil: .*distillation\/x holds a run started with another recipe \(weight: 0\.3 there, 0\.5 now\); use another --name/);
      const seeded = openRun({ profile: 'smoke', dir, overrides: { copycat: { train: { seed: 7 } } } });
      await assert.rejects(distilCopycat(seeded, [teacher], { name: 'y', weight: 0.5 }), /distil: the config sets copycat\.train\.seed \(7\), which would override the student's own seed; remove it, --seed sets it/);
    } finally {
      if (allow === undefined) delete process.env.COPYCAT_ALLOW_PURE_JS;
      else process.env.COPYCAT_ALLOW_PURE_JS = allow;
    }
  });
});

describe('query budgets', () => {
  it('uses all images for budgets above what the run has, once, in ascending order', () => {
    assert.deepEqual(fitBudgets([1000, 5000, 80000, 40000], 79987), [1000, 5000, 40000, 79987]);
    assert.deepEqual(fitBudgets([1000, 5000, 10000], 1000), [1000]);
    assert.throws(() => fitBudgets([0], 10), /positive integers, got 0/);
    assert.throws(() => fitBudgets([10], 0), /no NPD images/);
  });

  it('gives small budgets more epochs, up to 4x, and keeps the recipe\'s warm-up fraction', () => {
    assert.deepEqual([1000, 20000, 40000, 79987].map((b) => epochsFor(b, 79987, 2)), [8, 8, 4, 2]);
    assert.equal(epochsFor(79987, 79987, 12), 12);
    const run = openRun({ profile: 'full', dir: tmpDir('budget-run') });
    // full: 8 epochs with 1 of warm-up, so a 2-epoch copy warms up for a quarter of an epoch.
    assert.deepEqual(copycatTrainFor(run, 2), { epochs: 2, schedule: { kind: 'cosine', warmupEpochs: 1 / 4 } });
  });
});
