import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { QueryBudgetExceeded } from '../src/oracle/budget';
import { imageHash, QueryCache } from '../src/oracle/cache';
import { requestKey } from '../src/oracle/identity';
import { encodePng } from '../src/oracle/decode';
import { HttpOracle } from '../src/oracle/client';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer } from '../src/oracle/server';
import type { Oracle, OracleAnswer } from '../src/oracle/types';
import {
  buildNpdPdSl,
  buildNpdSl,
  buildPdSl,
  concatImageSets,
  labelHistogram,
  labelImages,
  loadStolenLabels,
  stolenImageSet,
} from '../src/stolenLabels';
import { CIFAR10_CLASSES, type ImageSet } from '../src/types';
import { randomImages, tinyModel, tmpDir } from './oracleFixtures';

/** Wraps an oracle, records every image hash it is asked, and can fail on a chosen call. */
class CountingOracle implements Oracle {
  asked: string[] = [];
  calls = 0;
  sawLabels = false;
  failOnCall?: number;
  constructor(private readonly inner: Oracle) {}
  get info() {
    return this.inner.info;
  }
  stats() {
    return this.inner.stats();
  }
  async query(batch: ImageSet): Promise<OracleAnswer[]> {
    this.calls++;
    if (this.calls === this.failOnCall) throw new Error('simulated crash');
    if (batch.labels || batch.soft) this.sawLabels = true;
    const px = batch.height * batch.width * 3;
    for (let i = 0; i < batch.n; i++) this.asked.push(imageHash(batch.images, i, px));
    return this.inner.query(batch);
  }
}

const quiet = { progress: false as const };

/** One batch request to the kit's server with a given Idempotency-Key (what a killed run had sent). */
async function post(url: string, images: Uint8Array[], key: string): Promise<void> {
  const pngs = await Promise.all(images.map((img) => encodePng(img, 0, 8, 8)));
  const res = await fetch(`${url}/v1/classify/batch`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-API-Key': 'k', 'Idempotency-Key': key },
    body: JSON.stringify({ images: pngs.map((b) => b.toString('base64')) }),
  });
  assert.equal(res.status, 200, await res.text());
}

describe('stolen labels: labeling job', () => {
  const model = tinyModel();
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('labels every image like the oracle, writes the stolen-label file, reads it back', async () => {
    const dir = tmpDir('label');
    const set = randomImages(23);
    const truth = (await new LocalOracle(model).query(set)).map((a) => a.label);
    const o = new CountingOracle(new LocalOracle(model));
    const progress: [number, number, number, number][] = [];
    const tensors = tf.memory().numTensors;
    const stolen = await labelImages(o, set, { runDir: dir, name: 'NPD-SL', batchSize: 5, ...quiet, onProgress: (d, t, c, e) => progress.push([d, t, c, e]) });
    assert.equal(tf.memory().numTensors, tensors, 'no tensors left behind');
    assert.deepEqual(stolen.labels, truth);
    assert.equal(o.calls, 5);
    assert.deepEqual(progress.map((p) => p[0]), [0, 5, 10, 15, 20, 23]);
    assert.ok(progress.every((p) => p[1] === 23));
    assert.equal(progress[5][2], 0.023, '$1 per 1000 images');
    assert.equal(progress[5][3], 0, 'ETA 0 when done');
    const file = path.join(dir, 'stolen', 'NPD-SL.json');
    const back = loadStolenLabels(file);
    assert.deepEqual(back.labels, truth);
    assert.deepEqual(back.ids, set.ids);
    assert.equal(back.oracle.answer.mode, 'label');
    assert.deepEqual(back.queries, { distinct: 23, askedThisCall: 23, fromCache: 0, duplicates: 0 });
    assert.equal(back.cost.usd, 0.023);
    assert.ok(!Number.isNaN(Date.parse(back.createdAt)));
    const train = stolenImageSet(set, back);
    assert.deepEqual(Array.from(train.labels!), truth);
    assert.equal(train.soft, undefined, 'label mode gives hard labels only');
  });

  it('killed after 2 batches (throw), then resumed: no image is asked twice', async () => {
    const dir = tmpDir('resume');
    const set = randomImages(30, 8, 'resume');
    const o = new CountingOracle(new LocalOracle(model));
    o.failOnCall = 3;
    await assert.rejects(labelImages(o, set, { runDir: dir, batchSize: 8, ...quiet }), /simulated crash/);
    assert.equal(o.asked.length, 16);
    o.failOnCall = undefined;
    const stolen = await labelImages(o, set, { runDir: dir, batchSize: 8, ...quiet });
    assert.equal(o.asked.length, 30);
    assert.equal(new Set(o.asked).size, 30, 'every image asked exactly once over both sessions');
    assert.equal(stolen.queries.fromCache, 16);
    assert.equal(stolen.queries.askedThisCall, 14);
    assert.deepEqual(stolen.labels, (await new LocalOracle(model).query(set)).map((a) => a.label));
  });

  it('aborted through an AbortSignal, with a torn cache line, then resumed over HTTP: the server is paid once per image', async () => {
    const dir = tmpDir('abort');
    const set = randomImages(40, 8, 'abort');
    const srv = await startOracleServer({ oracle: new LocalOracle(model), keys: ['k'], log: false, maxImagesPerRequest: 4 });
    try {
      const o = await HttpOracle.connect({ url: srv.url, apiKey: 'k', concurrency: 2 });
      const ac = new AbortController();
      const err = await labelImages(o, set, {
        cacheFile: path.join(dir, 'q.jsonl'),
        batchSize: 10,
        signal: ac.signal,
        ...quiet,
        onProgress: (done) => done >= 20 && ac.abort(),
      }).catch((e) => e);
      assert.equal(err.name, 'AbortError');
      assert.match(err.message, /after 20 of 40 images/);
      assert.equal(srv.stats().images, 20);
      fs.appendFileSync(path.join(dir, 'q.jsonl'), '{"h":"0123');
      const stolen = await labelImages(o, set, { cacheFile: path.join(dir, 'q.jsonl'), batchSize: 10, ...quiet });
      assert.equal(srv.stats().images, 40, 'resumed without asking the first 20 again');
      assert.deepEqual(stolen.labels, (await new LocalOracle(model).query(set)).map((a) => a.label));
      assert.ok(fs.existsSync(path.join(dir, 'stolen.json')), 'the set lands next to the cache by default');
    } finally {
      await srv.close();
    }
  });

  it('identical images are asked once; a second set reuses the cache', async () => {
    const dir = tmpDir('dup');
    const base = randomImages(6, 8, 'dup');
    const set = concatImageSets(base, base, randomImages(2, 8, 'dup'));
    const o = new CountingOracle(new LocalOracle(model));
    const s = await labelImages(o, set, { runDir: dir, ...quiet });
    assert.equal(o.asked.length, 6);
    assert.deepEqual(s.queries, { distinct: 6, askedThisCall: 6, fromCache: 0, duplicates: 8 });
    assert.deepEqual(s.labels.slice(0, 6), s.labels.slice(6, 12));
    const again = await labelImages(o, base, { runDir: dir, name: 'other', ...quiet });
    assert.equal(o.asked.length, 6, 'nothing new asked');
    assert.equal(again.queries.fromCache, 6);
    assert.equal(again.cost.thisCallUsd, 0);
  });

  it('a rerun with the same answers leaves the file as it is; other answers rewrite it', async () => {
    const dir = tmpDir('keep');
    const set = randomImages(12, 8, 'keep');
    const file = path.join(dir, 'stolen', 'NPD-SL.json');
    await labelImages(new LocalOracle(model), set, { runDir: dir, name: 'NPD-SL', ...quiet });
    const first = fs.readFileSync(file, 'utf8');
    const again = await labelImages(new LocalOracle(model), set, { runDir: dir, name: 'NPD-SL', ...quiet });
    assert.equal(again.queries.askedThisCall, 0, 'the caller hears what this call asked');
    assert.equal(fs.readFileSync(file, 'utf8'), first, 'the file keeps the call that paid');
    assert.equal(loadStolenLabels(file).queries.askedThisCall, 12);
    const other = tinyModel(8, 10, 99);
    const truth = (await new LocalOracle(other).query(set)).map((a) => a.label);
    assert.notDeepEqual(truth, again.labels, 'the fixture: another oracle answers otherwise');
    await labelImages(new LocalOracle(other), set, { cacheFile: path.join(dir, 'other.jsonl'), outFile: file, name: 'NPD-SL', ...quiet });
    assert.deepEqual(loadStolenLabels(file).labels, truth, 'new answers are written');
  });

  it('spends the budget to the last image, stops with QueryBudgetExceeded, resumes with a new budget', async () => {
    const dir = tmpDir('budget');
    const set = randomImages(25, 8, 'budget');
    const o1 = new CountingOracle(new LocalOracle(model, { budget: 10 }));
    const e = await labelImages(o1, set, { runDir: dir, batchSize: 4, ...quiet }).catch((x) => x);
    assert.ok(e instanceof QueryBudgetExceeded, String(e));
    assert.equal(e.used, 10);
    assert.equal(e.limit, 10);
    assert.match(e.message, /15 images of this set stay unlabeled/);
    assert.equal(o1.stats().queries, 10);
    const o2 = new CountingOracle(new LocalOracle(model, { budget: 100 }));
    await labelImages(o2, set, { runDir: dir, batchSize: 4, ...quiet });
    assert.equal(o2.asked.length, 15);
    assert.equal(new Set([...o1.asked, ...o2.asked]).size, 25);
  });

  it('each response\'s answers are on disk before query() goes on; pending requests are resent as they were', async () => {
    const dir = tmpDir('ahead');
    const set = randomImages(20, 8, 'ahead');
    const cacheFile = path.join(dir, 'q.jsonl');
    const srv = await startOracleServer({ oracle: new LocalOracle(model), keys: ['k'], log: false, maxImagesPerRequest: 4 });
    try {
      const http = await HttpOracle.connect({ url: srv.url, apiKey: 'k', concurrency: 2 });
      const onDisk = (): number => fs.readFileSync(cacheFile, 'utf8').split('\n').filter((l) => l.startsWith('{"h"')).length;
      let seen = 0;
      let keys: string[] = [];
      const watched: Oracle = {
        info: http.info,
        stats: () => http.stats(),
        query: (batch, q = {}) =>
          http.query(batch, {
            ...q,
            onRequests: (r) => {
              q.onRequests?.(r);
              keys = keys.concat(r.map((x) => x.key));
              assert.ok(fs.existsSync(QueryCache.requestsFileOf(cacheFile)), 'requests are written ahead');
            },
            onAnswers: (start, answers) => {
              q.onAnswers!(start, answers);
              seen += answers.length;
              assert.equal(onDisk(), seen, 'the answers of this response are in the file already');
            },
          }),
      };
      await labelImages(watched, set, { cacheFile, batchSize: 8, ...quiet });
      assert.equal(seen, 20);
      assert.equal(new Set(keys).size, 5, 'one derived key per request of 4 images');
      assert.ok(!fs.existsSync(QueryCache.requestsFileOf(cacheFile)), 'nothing pending afterwards');
      // A request written ahead whose answers never came (a kill): the rerun resends exactly it, the server replays.
      const more = randomImages(6, 8, 'ahead-more');
      const c = QueryCache.open(cacheFile, http.info, { height: 8, width: 8 });
      const group = [imageHash(more.images, 4, 192), imageHash(more.images, 1, 192)];
      c.recordRequests([{ key: requestKey(group, 'label'), hashes: group }]);
      c.close();
      await post(srv.url, [more.images.subarray(4 * 192, 5 * 192), more.images.subarray(192, 2 * 192)], requestKey(group, 'label'));
      const before = srv.stats().images;
      const stolen = await labelImages(http, more, { cacheFile, batchSize: 8, ...quiet });
      assert.equal(srv.stats().images - before, 4, 'the charged pair was replayed, the other 4 bought');
      assert.equal(srv.stats().replayed, 1);
      assert.equal(stolen.queries.askedThisCall, 6);
    } finally {
      await srv.close();
    }
  });

  it('the budget lives with the cache: a rerun keeps it without being told, null lifts it', async () => {
    const dir = tmpDir('budget-cache');
    const set = randomImages(30, 8, 'budget-cache');
    const o = new CountingOracle(new LocalOracle(model));
    const e1 = await labelImages(o, set, { runDir: dir, batchSize: 4, budget: 10, ...quiet }).catch((x) => x);
    assert.ok(e1 instanceof QueryBudgetExceeded, String(e1));
    const e2 = await labelImages(o, set, { runDir: dir, batchSize: 4, ...quiet }).catch((x) => x);
    assert.ok(e2 instanceof QueryBudgetExceeded, 'a rerun is held to the recorded budget');
    assert.match(e2.message, /recorded with the cache .*used 10 of 10 images/);
    assert.equal(o.asked.length, 10, 'nothing more was asked');
    await labelImages(o, set, { runDir: dir, batchSize: 4, budget: null, ...quiet });
    assert.equal(o.asked.length, 30);
  });

  it('opens a query cache written before identities (the pipeline\'s oracle of run <name>)', async () => {
    const dir = tmpDir('legacy');
    const set = randomImages(12, 8, 'legacy');
    const cacheFile = path.join(dir, 'answers-abc.jsonl');
    const truth = await new LocalOracle(model).query(set);
    // What the previous code wrote: a header without identity, then the answers of 8 images.
    const header = { format: 'copycat-query-cache', version: 1, created: '2026-01-01T00:00:00.000Z', oracle: { name: 'oracle of run full-1', kind: 'local', answer: { mode: 'label' }, numClasses: 10, transforms: [] }, image: { height: 8, width: 8 } };
    const lines = [JSON.stringify(header), ...truth.slice(0, 8).map((a, i) => JSON.stringify({ h: imageHash(set.images, i, 192), a }))];
    fs.writeFileSync(cacheFile, lines.join('\n') + '\n');
    const o = new CountingOracle(new LocalOracle(model, { name: 'oracle of run full-1' }));
    const stolen = await labelImages(o, set, { cacheFile, ...quiet });
    assert.equal(o.asked.length, 4, 'the 8 answers paid before were used');
    assert.deepEqual(stolen.labels, truth.map((a) => a.label));
    // Bound to the oracle's identity now: another name for the same model finds it too.
    const again = await labelImages(new LocalOracle(model, { name: 'served elsewhere' }), set, { cacheFile, ...quiet });
    assert.equal(again.queries.askedThisCall, 0);
  });

  it('probabilities mode: soft targets; a cache of another mode is refused', async () => {
    const dir = tmpDir('soft');
    const set = randomImages(9, 8, 'soft');
    await labelImages(new LocalOracle(model), set, { runDir: dir, ...quiet });
    await assert.rejects(labelImages(new LocalOracle(model, { answer: 'probabilities' }), set, { runDir: dir, ...quiet }), /belongs to another oracle setting/);
    const s = await labelImages(new LocalOracle(model, { answer: 'rounded:3' }), set, { cacheFile: path.join(dir, 'r.jsonl'), ...quiet });
    const train = stolenImageSet(set, loadStolenLabels(path.join(dir, 'stolen.json')));
    assert.equal(train.soft!.length, 9 * 10);
    const row = Array.from(train.soft!.subarray(0, 10));
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    assert.equal(row.indexOf(Math.max(...row)), s.labels[0]);
  });

  it('stolenImageSet refuses other or reordered images; loadStolenLabels names the bad field', () => {
    const dir = tmpDir('bad');
    const set = randomImages(4, 8, 'bad');
    const file = path.join(dir, 's.json');
    return labelImages(new LocalOracle(model), set, { cacheFile: path.join(dir, 'q.jsonl'), outFile: file, ...quiet }).then((s) => {
      const swapped = concatImageSets(
        { ...set, n: 1, images: set.images.subarray(192, 384) },
        { ...set, n: 1, images: set.images.subarray(0, 192) },
        { ...set, n: 2, images: set.images.subarray(384) },
      );
      assert.throws(() => stolenImageSet(swapped, s), /image 0 differs from the one labeled/);
      assert.throws(() => stolenImageSet(randomImages(5), s), /images are 5 x 8x8, the stolen labels 'stolen' are for 4 x 8x8/);
      const j = JSON.parse(fs.readFileSync(file, 'utf8'));
      j.labels[2] = 11;
      fs.writeFileSync(file, JSON.stringify(j));
      assert.throws(() => loadStolenLabels(file), /s\.json: field 'labels\[2\]' must be an integer in 0\.\.9, got 11/);
      assert.throws(() => loadStolenLabels(path.join(dir, 'none.json')), /not found/);
    });
  });
});

describe('stolen labels: the paper\'s three training sets', () => {
  const model = tinyModel();
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('NPD-SL, PD-SL (ground truth discarded before querying), NPD+PD-SL (concatenation, no new queries)', async () => {
    const dir = tmpDir('sets');
    const npd = randomImages(12, 8, 'npd');
    const pd: ImageSet = { ...randomImages(8, 8, 'pd'), labels: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]) };
    const o = new CountingOracle(new LocalOracle(model));
    const a = await buildNpdSl(o, npd, { runDir: dir, ...quiet });
    const b = await buildPdSl(o, pd, { runDir: dir, ...quiet });
    assert.equal(o.sawLabels, false, 'the oracle never saw ground truth');
    const oracleSays = (await new LocalOracle(model).query(pd)).map((x) => x.label);
    assert.deepEqual(Array.from(b.set.labels!), oracleSays, 'PD-SL labels are the oracle\'s, not the ground truth');
    assert.equal(a.stolen.name, 'NPD-SL');
    assert.ok(fs.existsSync(path.join(dir, 'stolen', 'PD-SL.json')));
    const asked = o.asked.length;
    const both = buildNpdPdSl(a, b);
    assert.equal(both.n, 20);
    assert.deepEqual(Array.from(both.labels!), [...a.stolen.labels, ...b.stolen.labels]);
    assert.deepEqual(both.images.subarray(12 * 192), pd.images);
    assert.equal(o.asked.length, asked);
  });

  it('labelHistogram counts per class and the imbalance', () => {
    const h = labelHistogram(Uint8Array.from([3, 3, 3, 1, 0, 3]), CIFAR10_CLASSES);
    assert.equal(h.total, 6);
    assert.deepEqual(h.rows[3], { label: 3, name: 'cat', count: 4, fraction: 4 / 6 });
    assert.equal(h.maxOverMin, Infinity, 'some classes never occur');
    assert.equal(labelHistogram([0, 1, 1], ['a', 'b']).maxOverMin, 2);
    assert.throws(() => labelHistogram([0, 2], ['a', 'b']), /labels\[1\] = 2 is not a class index in 0..1/);
  });
});
