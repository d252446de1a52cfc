import { strict as assert } from 'assert';
import seedrandom from 'seedrandom';
import { normalQuantile, shapiroWilkW } from '../src/defender/shapiroWilk';
import { PradaDetector, pradaFeatures } from '../src/defender/prada';
import { calibrateMaxRate, ConfidenceDetector } from '../src/defender/confidence';
import { KeyMonitor } from '../src/defender/monitor';
import { CountingOracle } from './oracleFixtures';
import * as tf from '@tensorflow/tfjs';
import { encodePng } from '../src/oracle/decode';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer } from '../src/oracle/server';
import { randomImages, tinyModel } from './oracleFixtures';
import { conferrableFingerprint, makeFingerprint, naturalFingerprint, rocAuc, scoreSuspect } from '../src/defender/ownership';
import { train } from '../src/train';
import { argmaxRows, predictProbabilities } from '../src/preprocess';
import { tiny, tinySet } from './trainFixtures';

const px = 8 * 8 * 3;
/** Independent natural-like images: each pixel drawn afresh. */
const honest = (rng: () => number) => Uint8Array.from({ length: px }, () => Math.floor(rng() * 256));

describe('detecting an extraction: PRADA (src/defender)', () => {
  it('Shapiro-Wilk W matches scipy.stats.shapiro', () => {
    const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 2e-4, `${what}: ${a} vs scipy ${b}`);
    close(shapiroWilkW(Array.from({ length: 10 }, (_, i) => i + 1)), 0.9701646110856056, '1..10');
    close(shapiroWilkW([1, 2, 4, 7, 20]), 0.8015315349135875, 'n = 5');
    close(shapiroWilkW([1, 2, 3, 5]), 0.9713736654999263, 'n = 4');
    close(shapiroWilkW([3, 1, 2]), 1, 'n = 3');
    close(shapiroWilkW(Array.from({ length: 30 }, (_, i) => (i + 1) ** 2)), 0.9014205350356363, 'squares');
    close(shapiroWilkW(Array.from({ length: 100 }, (_, i) => normalQuantile((i + 0.5) / 100))), 0.9995629225162563, 'normal quantiles');
    close(shapiroWilkW(Array.from({ length: 3000 }, (_, i) => Math.sin((i + 1) * 1.7) + 0.3 * Math.cos((i + 1) * 0.37))), 0.9491355670774695, 'n = 3000');
    assert.throws(() => shapiroWilkW([1, 1, 1]), /all values are equal/);
  });

  it('stays quiet on independent queries and fires on a stream of small perturbations of a few seeds', () => {
    const rng = seedrandom('prada');
    const quiet = new PradaDetector({ minQueries: 50 });
    for (let i = 0; i < 1500; i++) quiet.observe(pradaFeatures(honest(rng), 8, 8, 0), i % 10);
    assert.equal(quiet.state.flaggedAt, null, `honest stream flagged (W ${quiet.state.w})`);
    assert.ok(quiet.state.w! > 0.9);
    // The synthetic queries PRADA was made for (Papernot et al.'s Jacobian augmentation): each new query is
    // an earlier one moved by a fixed step in every pixel, so nearest distances pile up at one value.
    const chains = Array.from({ length: 5 }, () => honest(rng));
    const attack = new PradaDetector({ minQueries: 50 });
    for (let i = 0; i < 1500 && attack.state.flaggedAt === null; i++) {
      const c = i % 5;
      chains[c] = Uint8Array.from(chains[c], (v) => Math.max(0, Math.min(255, v + (rng() < 0.5 ? -8 : 8))));
      attack.observe(pradaFeatures(chains[c], 8, 8, 0), c);
    }
    assert.ok(attack.state.flaggedAt !== null && attack.state.flaggedAt < 200, `attack not flagged early (W ${attack.state.w}, at ${attack.state.flaggedAt})`);
  });

  it('averages an image down for a cheaper monitor', () => {
    const img = Uint8Array.from({ length: px }, (_, i) => (i % 3 === 0 ? 255 : 0));
    const f = pradaFeatures(img, 8, 8, 2);
    assert.equal(f.length, 12);
    assert.deepEqual(Array.from(f).slice(0, 3), [1, 0, 0]);
    assert.throws(() => new PradaDetector({ delta: 1.5 }), /monitor.prada.delta must be in \(0, 1\)/);
  });
});

describe('detecting an extraction: the confidence watch (src/defender/confidence.ts)', () => {
  it('calibrates on honest top probabilities and fires when a window holds too many unsure answers', () => {
    const rng = seedrandom('conf');
    const honestTop = Float32Array.from({ length: 5000 }, () => (rng() < 0.1 ? 0.3 : 0.9));
    const { honestRate, maxRate } = calibrateMaxRate(honestTop, 0.5, 200);
    assert.ok(Math.abs(honestRate - 0.1) < 0.02, String(honestRate));
    assert.ok(maxRate > honestRate && maxRate < 0.25, String(maxRate)); // 0.1 + 5 x sqrt(0.09 / 200)
    const quiet = new ConfidenceDetector({ threshold: 0.5, window: 200, maxRate });
    for (let i = 0; i < 10000; i++) quiet.observe(rng() < 0.1 ? 0.3 : 0.9);
    assert.equal(quiet.state.flaggedAt, null, `honest stream flagged (rate ${quiet.state.rate})`);
    const npd = new ConfidenceDetector({ threshold: 0.5, window: 200, maxRate });
    for (let i = 0; i < 10000 && npd.state.flaggedAt === null; i++) npd.observe(rng() < 0.4 ? 0.3 : 0.9);
    assert.ok(npd.state.flaggedAt !== null && npd.state.flaggedAt <= 400, `an NPD-like stream was not caught early (${npd.state.flaggedAt})`);
  });

  it('a monitor with the confidence watch needs probabilities, and only a local model gives them', async () => {
    const m = new KeyMonitor({ prada: null, confidence: { maxRate: 0.5, window: 10 } });
    assert.throws(() => m.observe(new Uint8Array(px), 1, 8, 8, [0]), /needs the oracle's probabilities/);
    assert.throws(() => new KeyMonitor({ prada: null }), /at least one detector/);
    await tf.setBackend('cpu');
    await assert.rejects(startOracleServer({ oracle: new CountingOracle(new LocalOracle(tinyModel())), keys: ['k'], monitor: { confidence: {} }, log: false }), /monitor.confidence reads the model's own probabilities/);
  });
});

describe('the extraction monitor in the HTTP server (startOracleServer monitor)', function () {
  this.timeout(120000);

  it('flags the synthetic attacker\'s key, refuses it with a JSON reason, leaves the honest key alone, and shows both in /v1/stats', async () => {
    await tf.setBackend('cpu');
    const srv = await startOracleServer({
      oracle: new LocalOracle(tinyModel()), keys: [{ key: 'sk-honest', id: 'honest' }, { key: 'sk-attacker', id: 'attacker' }],
      monitor: { prada: { minQueries: 30 }, action: 'refuse' }, adminKeys: ['sk-owner'], log: false,
    });
    try {
      const rng = seedrandom('server-monitor');
      const send = async (key: string, images: Uint8Array[]) => {
        const set = { images: new Uint8Array(images.length * px), n: images.length, height: 8, width: 8 };
        images.forEach((im, i) => set.images.set(im, i * px));
        const body = { images: await Promise.all(images.map(async (_, i) => (await encodePng(set.images, i, 8, 8)).toString('base64'))) };
        const res = await fetch(`${srv.url}/v1/classify/batch`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': key }, body: JSON.stringify(body) });
        return { status: res.status, json: (await res.json()) as any };
      };
      for (let r = 0; r < 8; r++) assert.equal((await send('sk-honest', Array.from({ length: 25 }, () => honest(rng)))).status, 200);
      const chain = [honest(rng), honest(rng)];
      let refused: { status: number; json: any } | undefined;
      for (let r = 0; r < 20 && !refused; r++) {
        const batch = Array.from({ length: 20 }, (_, i) => (chain[i % 2] = Uint8Array.from(chain[i % 2], (v) => Math.max(0, Math.min(255, v + (rng() < 0.5 ? -8 : 8))))));
        const res = await send('sk-attacker', batch);
        if (res.status !== 200) refused = res;
      }
      assert.ok(refused, 'the attacker was never refused');
      assert.equal(refused.status, 403);
      assert.equal(refused.json.error.code, 'extraction_suspected');
      assert.equal((await send('sk-honest', [honest(rng)])).status, 200, 'the honest key must keep its answers');
      const denied = await fetch(`${srv.url}/v1/stats`, { headers: { 'X-API-Key': 'sk-honest' } });
      assert.equal(denied.status, 403);
      const stats = (await (await fetch(`${srv.url}/v1/stats`, { headers: { 'X-API-Key': 'sk-owner' } })).json()) as any;
      assert.equal(stats.byKey.honest.monitor.flaggedAt, null);
      assert.equal(stats.byKey.honest.monitor.queries, 201);
      assert.ok(stats.byKey.attacker.monitor.flaggedAt > 30, JSON.stringify(stats.byKey.attacker.monitor));
      assert.ok(stats.byKey.attacker.monitor.seconds >= 0);
    } finally {
      await srv.close();
    }
  });
});

describe('ownership verification with labels only (src/defender/ownership.ts)', function () {
  this.timeout(300000);

  it('rocAuc counts pairs, ties half', () => {
    assert.equal(rocAuc([0.9, 0.8], [0.1, 0.2]), 1);
    assert.equal(rocAuc([0.5], [0.5]), 0.5);
    assert.equal(rocAuc([0.1, 0.9], [0.5]), 0.5);
    assert.throws(() => rocAuc([], [1]), /at least one positive and one negative/);
  });

  it('separates copycats from independently trained models in a seeded toy setting, with one query per fingerprint image', async () => {
    await tf.setBackend('cpu');
    const cfg = { epochs: 6, batchSize: 16, learningRate: 0.05, schedule: { kind: 'constant' as const }, seed: 1, augmentation: { crop: false, flip: false } };
    const oracle = tiny(1);
    await train(oracle, tinySet(96, 8, 8, 3, 'own-oracle'), cfg, { log: false });
    // The Copycat attack in miniature: answers of the oracle to out-of-domain (noise) images.
    const npd = randomImages(256, 8, 'own-npd');
    const stolen = { ...npd, labels: argmaxRows(await predictProbabilities(oracle, npd), 3) };
    const tensors = tf.memory().numTensors;
    const fp = await makeFingerprint(oracle, tinySet(400, 8, 8, 3, 'own-base'), { n: 30, epsilon: 48, steps: 10 });
    assert.equal(tf.memory().numTensors, tensors, 'makeFingerprint leaked tensors');
    assert.equal(fp.images.n, 30);
    assert.ok(fp.oracleLabels.every((l, i) => l !== fp.cleanLabels[i]), 'every fingerprint image changes the oracle\'s answer');
    const copies: number[] = [];
    const independent: number[] = [];
    for (const s of [11, 12]) {
      const copy = tiny(s);
      await train(copy, stolen, { ...cfg, seed: s }, { log: false });
      const indep = tiny(s + 50);
      await train(indep, tinySet(96, 8, 8, 3, `own-indep-${s}`), { ...cfg, seed: s }, { log: false });
      const c = await scoreSuspect(copy, fp);
      assert.equal(c.queries, 30);
      copies.push(c.score);
      // Through the Oracle interface too, as a black box over HTTP would be asked.
      independent.push((await scoreSuspect(new LocalOracle(indep), fp)).score);
      copy.dispose();
    }
    assert.equal(rocAuc(copies, independent), 1, `copies ${copies} vs independent models ${independent}`);
    const nat = await naturalFingerprint(oracle, randomImages(50, 8, 'own-fp'));
    assert.deepEqual(Array.from(nat.oracleLabels), Array.from(nat.cleanLabels));
  });

  it('conferrable fingerprints: the oracle and the owner\'s surrogate give the target, the owner\'s reference does not, and copies follow more than independent models', async () => {
    await tf.setBackend('cpu');
    const cfg = { epochs: 6, batchSize: 16, learningRate: 0.05, schedule: { kind: 'constant' as const }, seed: 1, augmentation: { crop: false, flip: false } };
    const oracle = tiny(1);
    await train(oracle, tinySet(96, 8, 8, 3, 'cae-oracle'), cfg, { log: false });
    const npd = randomImages(256, 8, 'cae-npd');
    const stolen = { ...npd, labels: argmaxRows(await predictProbabilities(oracle, npd), 3) };
    const copyOf = async (s: number) => { const m = tiny(s); await train(m, stolen, { ...cfg, seed: s }, { log: false }); return m; };
    const independentOf = async (s: number) => { const m = tiny(s + 50); await train(m, tinySet(96, 8, 8, 3, `cae-indep-${s}`), { ...cfg, seed: s }, { log: false }); return m; };
    const surrogate = await copyOf(21);
    const reference = await independentOf(21);
    const base = tinySet(400, 8, 8, 3, 'cae-base');
    const tensors = tf.memory().numTensors;
    const fp = await conferrableFingerprint(oracle, base, { n: 15, epsilon: 48, steps: 10, surrogates: [surrogate], references: [reference], seed: 3 });
    assert.equal(tf.memory().numTensors, tensors, 'conferrableFingerprint leaked tensors');
    assert.equal(fp.images.n, 15);
    const labels = async (m: tf.LayersModel) => argmaxRows(await predictProbabilities(m, fp.images), 3);
    assert.deepEqual(Array.from(await labels(oracle)), Array.from(fp.oracleLabels), 'the oracle gives every target');
    assert.deepEqual(Array.from(await labels(surrogate)), Array.from(fp.oracleLabels), 'so does the surrogate copy');
    assert.ok((await labels(reference)).every((l, i) => l !== fp.oracleLabels[i]), 'the reference gives none');
    assert.ok(fp.oracleLabels.every((l, i) => l !== fp.cleanLabels[i]), 'targets differ from the clean answer');
    const copies: number[] = [];
    const independent: number[] = [];
    for (const s of [11, 12]) {
      const copy = await copyOf(s);
      const indep = await independentOf(s);
      copies.push((await scoreSuspect(copy, fp)).score);
      independent.push((await scoreSuspect(new LocalOracle(indep), fp)).score);
      copy.dispose();
    }
    assert.equal(rocAuc(copies, independent), 1, `copies ${copies} vs independent models ${independent}`);
    await assert.rejects(conferrableFingerprint(oracle, base, { n: 30, surrogates: [], references: [reference] }), /needs at least one surrogate copy and one reference model/);
    await assert.rejects(conferrableFingerprint(oracle, tinySet(8, 8, 8, 3, 'cae-few'), { n: 30, epsilon: 48, surrogates: [surrogate], references: [reference] }), /only \d+ of 30 images became conferrable within epsilon 48\/255/);
    [oracle, surrogate, reference].forEach((m) => m.dispose());
  });
});
