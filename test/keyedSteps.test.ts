import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/platform/backend';
import { openRun } from '../src/run';
import { trainCopycat } from '../src/steps/copycatStep';
import { trainOracle } from '../src/steps/oracleStep';
import { formatVariantRows, pruneVariants, variantRows } from '../src/steps/runVariants';
import { stealLabels } from '../src/steps/stealStep';
import { copycatVariant, listVariants, oracleVariant } from '../src/steps/variants';
import { tmpDir } from './oracleFixtures';
import { npdFolder, tinyOverrides } from './stepFixtures';

/**
 * The researcher's loop on real steps (CIFAR-10 from the kit's download, a folder of made-up NPD
 * images): change one copycat setting and only that copycat trains again, from scratch, while the
 * oracle and the stolen labels are reused; `force` starts afresh; old variants stay listable.
 */

describe('keyed steps: change a parameter, re-run, compare', function () {
  this.timeout(600_000);
  let dir = '';
  let base: object = {};
  let npd = '';
  const logs: string[] = [];
  const hooks = { log: (s: string) => logs.push(s), onBatch: () => undefined };
  const taken = () => logs.splice(0).join('\n');

  before(async () => {
    await initBackend();
    dir = tmpDir('keyed-run');
    npd = await npdFolder(96);
    base = tinyOverrides(npd);
  });

  it('reuses the oracle and stolen labels and retrains only the changed copycat, from epoch 1', async () => {
    const tensors = tf.memory().numTensors;
    const run1 = openRun({ profile: 'smoke', dir, overrides: base });
    const oracle1 = await trainOracle(run1, hooks);
    await stealLabels(run1, hooks);
    const c1 = await trainCopycat(run1, 'NPD-SL', hooks);
    assert.match(taken(), /oracle: first variant in this run \(key [0-9a-f]{12}\): training[\s\S]*copycat NPD-SL: first variant/);
    assert.equal(c1.history.length, 1);

    const run2 = openRun({ profile: 'smoke', dir, overrides: tinyOverrides(npd, 2) });
    const oracle2 = await trainOracle(run2, hooks);
    await stealLabels(run2, hooks);
    const c2 = await trainCopycat(run2, 'NPD-SL', hooks);
    const said = taken();
    assert.match(said, new RegExp(`oracle: reused \\(key ${oracle1.key}`));
    assert.match(said, /stolen NPD-SL: reused[\s\S]*stolen PD-SL: reused/);
    assert.match(said, /copycat NPD-SL: new settings \(copycat\.train\.epochs 1 → 2; key [0-9a-f]{12}\): training/);
    assert.doesNotMatch(said, /Resumed from/, 'a new key never resumes another key\'s checkpoint');
    assert.equal(oracle2.key, oracle1.key);
    assert.notEqual(c2.key, c1.key);
    assert.deepEqual(c2.history.map((h) => h.epoch), [1, 2], 'trained from epoch 1 with the new schedule');
    assert.notEqual(copycatVariant(run2, 'NPD-SL').dir, copycatVariant(run1, 'NPD-SL').dir);

    // Back to the first settings: the first copycat is found again, untouched.
    const again = await trainCopycat(openRun({ profile: 'smoke', dir, overrides: base }), 'NPD-SL', hooks);
    assert.match(taken(), new RegExp(`copycat NPD-SL: reused \\(key ${c1.key}`));
    assert.deepEqual(again, c1);
    assert.equal(tf.memory().numTensors, tensors, 'no tensor leaks across the steps');
  });

  it('force retrains from epoch 1 and says so; both variants stay listable and comparable', async () => {
    const run2 = openRun({ profile: 'smoke', dir, overrides: tinyOverrides(npd, 2) });
    const v = copycatVariant(run2, 'NPD-SL');
    const before = fs.statSync(v.result).mtimeMs;
    const forced = await trainCopycat(run2, 'NPD-SL', { ...hooks, force: true });
    const said = taken();
    assert.match(said, new RegExp(`copycat NPD-SL: force: fresh start of key ${v.key} \\(its result and checkpoint were removed\\): training`));
    assert.doesNotMatch(said, /Resumed from/);
    assert.deepEqual(forced.history.map((h) => h.epoch), [1, 2]);
    assert.ok(fs.statSync(v.result).mtimeMs > before);

    const rows = variantRows(run2);
    const copies = rows.filter((r) => r.step === 'copycat' && r.name === 'NPD-SL');
    assert.equal(copies.length, 2);
    assert.deepEqual(copies.map((r) => r.current).sort(), [false, true]);
    // The smoke profile trains copycats for 2 epochs: only the old variant differs there.
    const table = formatVariantRows(copies);
    const old = table[copies.findIndex((r) => !r.current)];
    const now = table[copies.findIndex((r) => r.current)];
    assert.match(old['vs profile defaults'], /copycat\.train\.epochs 2 → 1/);
    assert.doesNotMatch(now['vs profile defaults'], /epochs/);
    assert.match(now.step, /^\* copycat NPD-SL$/);
    assert.ok(rows.every((r) => r.finished));
    assert.equal(rows.filter((r) => r.step === 'oracle').length, 1);

    const dry = pruneVariants(run2, { dryRun: true });
    assert.deepEqual(dry.map((r) => r.key), copies.filter((r) => !r.current).map((r) => r.key));
    assert.ok(fs.existsSync(dry[0].dir), 'a dry run removes nothing');
    pruneVariants(run2);
    assert.ok(!fs.existsSync(dry[0].dir));
    assert.equal(listVariants(run2).filter((r) => r.step === 'copycat').length, 1);
    assert.ok(fs.existsSync(oracleVariant(run2).result), 'the oracle in use is kept');
  });
  it('a per-set recipe (copycat.trainBySet) retrains only that set, says what it replaces, keeps the other keys', async () => {
    const plain = tinyOverrides(npd, 2);
    const runPlain = openRun({ profile: 'smoke', dir, overrides: plain });
    const npdKey = copycatVariant(runPlain, 'NPD-SL').key;
    const pdKeyPlain = copycatVariant(runPlain, 'PD-SL').key;
    const run = openRun({ profile: 'smoke', dir, overrides: { ...plain, copycat: { ...plain.copycat, trainBySet: { 'PD-SL': { epochs: 1, augmentation: { probability: 0.5 } } } } } });
    assert.equal(copycatVariant(run, 'NPD-SL').key, npdKey, 'a set without an entry keeps its key');
    assert.notEqual(copycatVariant(run, 'PD-SL').key, pdKeyPlain);
    const npdCopy = await trainCopycat(run, 'NPD-SL', hooks);
    const pd = await trainCopycat(run, 'PD-SL', hooks);
    const said = taken();
    assert.match(said, /copycat NPD-SL: reused/);
    assert.match(said, /copycat PD-SL: copycat\.trainBySet\['PD-SL'\] changes copycat\.train's augmentation\.probability \(unset\) → 0\.5, epochs 2 → 1$/m);
    assert.deepEqual(npdCopy.history.map((h) => h.epoch), [1, 2]);
    assert.deepEqual(pd.history.map((h) => h.epoch), [1], 'PD-SL trained its own schedule');
    assert.throws(() => copycatVariant(openRun({ profile: 'smoke', dir, overrides: { ...plain, copycat: { ...plain.copycat, trainBySet: { 'PD': { epochs: 1 } } } } }), 'PD-SL'),
      /copycat\.trainBySet: unknown set 'PD', expected one of NPD-SL, PD-SL, NPD\+PD-SL/);
  });
});
