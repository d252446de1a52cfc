import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { argmaxRows, predictProbabilities } from '../src/preprocess';
import { saveModel } from '../src/io';
import { createModel } from '../src/models';
import {
  formatAnswerSpec,
  gaussianNoiseTransform,
  normalizeAnswerSpec,
  reverseSigmoidTransform,
  roundingTransform,
  shapeAnswers,
  softTargetsOf,
  validateAnswer,
} from '../src/oracle/answers';
import { costOf, QueryBudgetExceeded } from '../src/oracle/budget';
import { imageHash, QueryCache } from '../src/oracle/cache';
import { requestKey } from '../src/oracle/identity';
import { LocalOracle } from '../src/oracle/local';
import { TokenBucket } from '../src/oracle/rateLimit';
import { randomImages, tinyModel, tmpDir } from './oracleFixtures';

describe('oracle: answer modes and transforms', () => {
  const probs = Float32Array.from([0.1, 0.6, 0.3, 0.25, 0.25, 0.5]);

  it('label mode returns only the arg-max', () => {
    assert.deepEqual(shapeAnswers(probs, 3, { mode: 'label' }), [{ label: 1 }, { label: 2 }]);
  });

  it('topk returns k (label, p) pairs, most likely first, k capped at numClasses', () => {
    const a = shapeAnswers(probs, 3, { mode: 'topk', k: 2 });
    assert.deepEqual(a.map((x) => x.topk!.map((t) => t.label)), [[1, 2], [2, 0]]);
    assert.ok(Math.abs(a[0].topk![0].p - 0.6) < 1e-6);
    assert.equal(shapeAnswers(probs, 3, 'topk:9').every((x) => x.topk!.length === 3), true);
  });

  it('probabilities returns the whole vector; rounded keeps n decimals', () => {
    const p = shapeAnswers(probs, 3, 'probabilities');
    assert.equal(p[0].probs!.length, 3);
    assert.ok(Math.abs(p[0].probs![1] - 0.6) < 1e-6);
    const r = shapeAnswers(Float32Array.from([0.123456, 0.876544]), 2, { mode: 'rounded', decimals: 2 });
    assert.deepEqual(r[0], { label: 1, probs: [0.12, 0.88] });
  });

  it('parses and formats mode strings, rejecting nonsense with the field named', () => {
    assert.deepEqual(normalizeAnswerSpec('topk:5'), { mode: 'topk', k: 5 });
    assert.deepEqual(normalizeAnswerSpec(undefined), { mode: 'label' });
    assert.equal(formatAnswerSpec({ mode: 'rounded' }), 'rounded:2');
    assert.throws(() => normalizeAnswerSpec('soft'), /'soft' is not one of label, topk/);
    assert.throws(() => normalizeAnswerSpec({ mode: 'topk', k: 0 }), /k must be an integer >= 1/);
    assert.throws(() => normalizeAnswerSpec('label:3'), /only topk/);
  });

  it('transforms run before shaping: rounding, seeded noise, reverse sigmoid', () => {
    const r = roundingTransform(1).apply(Float64Array.from([0.14, 0.86]));
    assert.deepEqual(Array.from(r), [0.1, 0.9]);
    const a1 = shapeAnswers(probs, 3, 'probabilities', [gaussianNoiseTransform(0.05, 3)]);
    const a2 = shapeAnswers(probs, 3, 'probabilities', [gaussianNoiseTransform(0.05, 3)]);
    assert.deepEqual(a1, a2, 'same seed, same answers');
    assert.notDeepEqual(a1[0].probs, shapeAnswers(probs, 3, 'probabilities')[0].probs, 'noise changed the vector');
    for (const a of a1) assert.ok(Math.abs(a.probs!.reduce((s, v) => s + v, 0) - 1) < 1e-9 && a.probs!.every((v) => v >= 0));
    const rs = shapeAnswers(Float32Array.from([0.7, 0.2, 0.1]), 3, 'probabilities', [reverseSigmoidTransform(0.5, 0.5)]);
    assert.equal(rs[0].label, 0, 'reverse sigmoid keeps this arg-max');
    assert.ok(Math.abs(rs[0].probs![0] - 0.7) > 0.01, 'but changes the probabilities');
  });

  it('validateAnswer names the field it rejects; softTargetsOf fills top-k leftovers evenly', () => {
    assert.throws(() => validateAnswer({ label: 12 }, { mode: 'label' }, 10, 'srv'), /srv: 'label' must be an integer class index in 0..9/);
    assert.throws(() => validateAnswer({ label: 1 }, { mode: 'probabilities' }, 3, 'srv'), /needs 'probs'/);
    assert.throws(() => validateAnswer({ label: 1, topk: [{ label: 1 }] }, { mode: 'topk', k: 1 }, 3, 'srv'), /topk' entry/);
    const soft = softTargetsOf({ label: 1, topk: [{ label: 1, p: 0.6 }, { label: 0, p: 0.2 }] }, 4)!;
    assert.deepEqual(Array.from(soft, (v) => +v.toFixed(4)), [0.2, 0.6, 0.1, 0.1]);
    assert.equal(softTargetsOf({ label: 1 }, 4), undefined);
  });
});

describe('oracle: budget, price and rate', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('costs $1 per 1000 images by default and a configurable price otherwise', async () => {
    const o = new LocalOracle(tinyModel(), {});
    await o.query(randomImages(5));
    assert.equal(o.stats().queries, 5);
    assert.equal(o.stats().cost, costOf(5, 1));
    assert.equal(costOf(1500, 1), 1.5);
    const o2 = new LocalOracle(tinyModel(), { pricePer1000: 2.5 });
    await o2.query(randomImages(4));
    assert.equal(o2.stats().cost, 0.01);
  });

  it('throws QueryBudgetExceeded naming used and limit before asking beyond the budget', async () => {
    const o = new LocalOracle(tinyModel(), { budget: 7 });
    await o.query(randomImages(5));
    await assert.rejects(o.query(randomImages(3)), (e: unknown) => {
      assert.ok(e instanceof QueryBudgetExceeded);
      assert.equal(e.used, 5);
      assert.equal(e.limit, 7);
      assert.match(e.message, /used 5 of 7 images/);
      return true;
    });
    assert.equal(o.stats().queries, 5, 'the refused batch was not counted');
    assert.equal(o.stats().remaining, 2);
    await o.query(randomImages(2));
    assert.equal(o.stats().remaining, 0);
  });

  it('token bucket: burst, then the advertised wait', () => {
    let now = 0;
    const b = new TokenBucket(60, 2, () => now);
    assert.equal(b.take(2), 0);
    assert.ok(Math.abs(b.take(1) - 1) < 1e-9, '1 image at 1/s needs 1 s');
    now = 1000;
    assert.equal(b.take(1), 0);
  });
});

describe('oracle: LocalOracle', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('answers like the model, in every mode, without leaking tensors', async () => {
    const model = tinyModel();
    const set = randomImages(37);
    const probs = await predictProbabilities(model, set, 16);
    const truth = Array.from(argmaxRows(probs, 10));
    const o = new LocalOracle(model, { batchSize: 16 });
    const before = tf.memory().numTensors;
    const ans = await o.query(set);
    await o.query(set);
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    assert.deepEqual(ans.map((a) => a.label), truth);
    assert.deepEqual(Object.keys(ans[0]), ['label']);
    const p = await new LocalOracle(model, { answer: 'probabilities' }).query(set);
    assert.ok(Math.abs(p[3].probs![truth[3]] - probs[3 * 10 + truth[3]]) < 1e-6);
    const t = await new LocalOracle(model, { answer: { mode: 'topk', k: 2 } }).query(set);
    assert.equal(t[0].topk!.length, 2);
    assert.equal(t[0].topk![0].label, truth[0]);
  });

  it('identity: a digest of weights and answer settings, never of the name; computing it leaves no tensor', async () => {
    const model = tinyModel();
    const before = tf.memory().numTensors;
    const a = new LocalOracle(model, { name: 'data/runs/x/oracle' });
    assert.equal(tf.memory().numTensors, before, 'no tensors created');
    assert.match(a.info.identity!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(new LocalOracle(tinyModel(), { name: 'elsewhere' }).info.identity, a.info.identity, 'same weights, other name: same oracle');
    assert.notEqual(new LocalOracle(tinyModel(8, 10, 8)).info.identity, a.info.identity);
    assert.notEqual(new LocalOracle(model, { answer: 'probabilities' }).info.identity, a.info.identity);
    assert.notEqual(new LocalOracle(model, { transforms: [roundingTransform(2)] }).info.identity, a.info.identity);
  });

  it('rejects images of the wrong size with both sizes named', async () => {
    const o = new LocalOracle(tinyModel(8));
    await assert.rejects(o.query(randomImages(2, 4)), /images are 4x4, the model takes 8x8/);
  });

  it('fromDir serves a model saved with saveModel', async () => {
    const dir = tmpDir('oracle-model');
    const model = tinyModel();
    await saveModel(model, dir);
    const o = await LocalOracle.fromDir(dir);
    const set = randomImages(6);
    assert.deepEqual(await o.query(set), await new LocalOracle(model).query(set));
    assert.equal(o.info.name, dir);
    await assert.rejects(LocalOracle.fromDir(path.join(dir, 'nope')), /does not exist/);
  });

  it('dispose frees the folded copy and a model loaded by fromDir, never a model passed in', async () => {
    const dir = tmpDir('oracle-bn-model');
    const model = createModel('resnet-8', { seed: 5, inputShape: [8, 8, 3] });
    await saveModel(model, dir);
    const set = randomImages(4);
    const start = tf.memory().numTensors;
    const loaded = await LocalOracle.fromDir(dir);
    const answers = await loaded.query(set);
    assert.ok(tf.memory().numTensors > start);
    loaded.dispose();
    assert.equal(tf.memory().numTensors, start, 'fromDir oracle left tensors behind');
    const wrapped = new LocalOracle(model);
    assert.deepEqual(await wrapped.query(set), answers, 'folded answers equal across instances');
    wrapped.dispose();
    assert.equal(tf.memory().numTensors, start, 'folded copy left tensors behind');
    assert.deepEqual(await new LocalOracle(model, { fold: false }).query(set), answers, 'the caller\'s model still works and agrees unfolded');
    model.dispose();
  });
});

describe('oracle: query cache file', () => {
  const info = { name: 'm', kind: 'local', answer: { mode: 'label' as const }, numClasses: 10, input: { height: 8, width: 8 }, pricePer1000: 1 };
  const h = (i: number): string => imageHash(randomImages(3).images, i, 8 * 8 * 3);

  it('reopens with every answer; drops a torn last line; keeps a whole record missing its newline', () => {
    const file = path.join(tmpDir('cache'), 'q.jsonl');
    const c = QueryCache.open(file, info, { height: 8, width: 8 });
    c.append([{ hash: h(0), answer: { label: 3 } }, { hash: h(1), answer: { label: 4 } }]);
    c.close();
    fs.appendFileSync(file, `{"h":"${h(2)}","a":{"lab`);
    const c2 = QueryCache.open(file, info, { height: 8, width: 8 });
    assert.equal(c2.size, 2);
    assert.equal(c2.tornLinesDropped, 1);
    c2.append([{ hash: h(2), answer: { label: 5 } }]);
    c2.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    assert.equal(lines.length, 5, 'header + 3 records + trailing empty');
    assert.deepEqual(JSON.parse(lines[3]), { h: h(2), a: { label: 5 } });
    // Cut the final newline only: the record is complete and must survive.
    fs.truncateSync(file, fs.statSync(file).size - 1);
    const c3 = QueryCache.open(file, info, { height: 8, width: 8 });
    assert.equal(c3.size, 3);
    assert.equal(c3.tornLinesDropped, 0);
    c3.close();
  });

  it('refuses a cache of another oracle setting, and a damaged middle line', () => {
    const file = path.join(tmpDir('cache'), 'q.jsonl');
    QueryCache.open(file, info, { height: 8, width: 8 }).close();
    assert.throws(() => QueryCache.open(file, { ...info, answer: { mode: 'probabilities' } as never }, { height: 8, width: 8 }), /answer mode .* use another cache file/);
    assert.throws(() => QueryCache.open(file, { ...info, name: 'other' }, { height: 8, width: 8 }), /oracle name 'm' vs 'other'/);
    fs.appendFileSync(file, 'garbage\n{"h":"x"}\n');
    assert.throws(() => QueryCache.open(file, info, { height: 8, width: 8 }), /q.jsonl: line 2 is not valid JSON/);
  });

  it('is keyed by the oracle\'s identity: an old header (no identity) opens under its name and is bound, then any name opens it', () => {
    const file = path.join(tmpDir('cache'), 'q.jsonl');
    // A cache as the pipeline wrote it before identities: the oracle named after its run.
    const legacy = { ...info, name: 'oracle of run full-1' };
    const c0 = QueryCache.open(file, legacy, { height: 8, width: 8 });
    c0.append([{ hash: h(0), answer: { label: 3 } }]);
    c0.close();
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8').split('\n')[0]).oracle.identity, undefined);
    const id = 'sha256:' + 'a'.repeat(64);
    assert.throws(() => QueryCache.open(file, { ...legacy, name: 'other', identity: id }, { height: 8, width: 8 }), /oracle name 'oracle of run full-1' vs 'other'/);
    const c1 = QueryCache.open(file, { ...legacy, identity: id }, { height: 8, width: 8 });
    assert.equal(c1.get(h(0))?.label, 3, 'same name, same settings: the paid answers are usable');
    c1.close();
    const c2 = QueryCache.open(file, { ...info, name: 'served at another URL', kind: 'http', identity: id }, { height: 8, width: 8 });
    assert.equal(c2.size, 1, 'bound to the identity: the name no longer matters');
    c2.close();
    assert.throws(() => QueryCache.open(file, { ...legacy, identity: 'sha256:' + 'b'.repeat(64) }, { height: 8, width: 8 }), /belongs to another oracle setting \(oracle identity sha256:a+ vs sha256:b+/);
    // A caller can vouch for an old header written under another name.
    const f2 = path.join(tmpDir('cache'), 'q.jsonl');
    QueryCache.open(f2, { ...info, name: 'data/runs/full-1/oracle' }, { height: 8, width: 8 }).close();
    QueryCache.open(f2, { ...info, name: 'oracle of run full-1', identity: id }, { height: 8, width: 8 }, { sameOracleNames: ['data/runs/full-1/oracle'] }).close();
    assert.throws(() => QueryCache.open(f2, { ...info, answer: { mode: 'topk', k: 2 } as never, identity: id }, { height: 8, width: 8 }), /answer mode/);
  });

  it('keeps the budget with the answers; reopening reads it; null lifts it', () => {
    const file = path.join(tmpDir('cache'), 'q.jsonl');
    const c = QueryCache.open(file, info, { height: 8, width: 8 });
    assert.equal(c.budget, undefined);
    c.setBudget(100);
    c.append([{ hash: h(0), answer: { label: 1 } }]);
    c.close();
    const c2 = QueryCache.open(file, info, { height: 8, width: 8 });
    assert.equal(c2.budget, 100);
    assert.equal(c2.size, 1, 'budget records are not answers');
    c2.setBudget(undefined);
    c2.close();
    assert.equal(QueryCache.open(file, info, { height: 8, width: 8 }).budget, undefined);
  });

  it('writes requests ahead to a sidecar: pending until all answered, a torn line cut off, the sidecar gone when nothing is pending', () => {
    const file = path.join(tmpDir('cache'), 'q.jsonl');
    const side = QueryCache.requestsFileOf(file);
    const r1 = { key: requestKey([h(0), h(1)], 'label'), hashes: [h(0), h(1)] };
    const r2 = { key: requestKey([h(2)], 'label'), hashes: [h(2)] };
    const c = QueryCache.open(file, info, { height: 8, width: 8 });
    c.recordRequests([r1, r2]);
    assert.ok(fs.existsSync(side));
    c.append([{ hash: h(0), answer: { label: 1 } }]);
    assert.deepEqual(c.pendingRequests().map((r) => r.key), [r1.key, r2.key], 'half answered is still pending');
    assert.equal(c.pendingImages(), 2);
    c.append([{ hash: h(2), answer: { label: 2 } }]);
    assert.deepEqual(c.pendingRequests(), [{ key: r1.key, hashes: r1.hashes }]);
    c.close();
    fs.appendFileSync(side, '{"key":"cc1-torn","h":["01');
    const c2 = QueryCache.open(file, info, { height: 8, width: 8 });
    assert.deepEqual(c2.pendingRequests().map((r) => r.key), [r1.key], 'the torn request (never sent) is dropped');
    c2.append([{ hash: h(1), answer: { label: 0 } }]);
    assert.deepEqual(c2.pendingRequests(), []);
    c2.close();
    assert.ok(!fs.existsSync(side), 'nothing pending: no sidecar');
    assert.equal(requestKey([h(0), h(1)], 'label'), r1.key, 'keys are derived, the same in every process');
    assert.notEqual(requestKey([h(1), h(0)], 'label'), r1.key, 'order matters');
    assert.notEqual(requestKey([h(0), h(1)], 'topk:3'), r1.key, 'so does the answer mode');
  });
});
