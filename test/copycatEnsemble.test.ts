import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { ensembleProbabilities, evaluateEnsemble, mirrorImages } from '../src/copycatEnsemble';
import { predictProbabilities } from '../src/preprocess';
import { openRun } from '../src/run';
import { scoreCopycatEnsemble } from '../src/steps/ensembleStep';
import { distilCopycat } from '../src/experiments/distillation';
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

  it('averages the members, and with flip also each member on the mirrored images', async () => {
    const pa = await predictProbabilities(a, set);
    const pb = await predictProbabilities(b, set);
    const pam = await predictProbabilities(a, mirrorImages(set));
    const both = await ensembleProbabilities([a, b], set);
    assert.ok(close(both, pa.map((x, i) => (x + pb[i]) / 2)));
    const flipped = await ensembleProbabilities([a], set, { flip: true });
    assert.ok(close(flipped, pa.map((x, i) => (x + pam[i]) / 2)));
    assert.ok(!close(flipped, pa), 'the mirrored view must change something for a dense model on random pixels');
    await assert.rejects(ensembleProbabilities([], set), /no models/);
  });

  it('scores the ensemble and leaks no tensor', async () => {
    const labelled = { ...set, labels: new Uint8Array(set.n).map((_, i) => i % 10) };
    const ev0 = await evaluateEnsemble([a, b], labelled, { flip: true });
    const before = tf.memory().numTensors;
    const ev = await evaluateEnsemble([a, b], labelled, { flip: true });
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
    // full: 12 epochs with 2 of warm-up, so a 2-epoch copy warms up for a third of an epoch.
    assert.deepEqual(copycatTrainFor(run, 2), { epochs: 2, schedule: { kind: 'cosine', warmupEpochs: 2 / 6 } });
  });
});
