import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { canonicalJson, formatChanges, keyOf, openRun, settingChanges } from '../src/run';
import { variantRows } from '../src/steps/runVariants';
import { readStolenLabels } from '../src/steps/stealStep';
import { copycatVariant, oracleVariant, readStepRecord, stolenVariant } from '../src/steps/variants';
import { tmpDir } from './oracleFixtures';

function put(dir: string, rel: string, value: unknown): void {
  const file = path.join(dir, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
}

/** A valid stolen-label file of n images, as labelImages writes it. */
const stolenSet = (name: string, n: number, answer: unknown) => ({
  format: 'copycat-stolen-labels', version: 1, name, createdAt: '2026-12-01T00:00:00.000Z', n, height: 32, width: 32,
  oracle: { name: 'oracle of run legacy', kind: 'local', answer, numClasses: 10, classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], pricePer1000: 1 },
  hashes: Array.from({ length: n }, (_, i) => i.toString(16).padStart(40, '0')), labels: Array.from({ length: n }, (_, i) => i % 3),
  queries: { distinct: n, askedThisCall: n, fromCache: 0, duplicates: 0 }, cost: { usd: n / 1000, thisCallUsd: n / 1000, pricePer1000: 1 }, cacheFile: 'stolen/queries.jsonl',
});

const history = (n: number) => Array.from({ length: n }, (_, i) => ({ epoch: i + 1, fpmath: 'strict' }));

describe('step keys', () => {
  it('hash the same inputs to the same key whatever the member order, and tell what changed', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } }), '{"a":{"d":[2,1]},"b":1}');
    assert.equal(keyOf({ a: 1, b: { c: 2 } }), keyOf({ b: { c: 2 }, a: 1 }));
    assert.notEqual(keyOf({ a: 1 }), keyOf({ a: 2 }));
    assert.match(keyOf({}), /^[0-9a-f]{12}$/);
    const changes = settingChanges({ copycat: { train: { epochs: 2, lr: 0.1 } }, seed: 1 }, { copycat: { train: { epochs: 4, lr: 0.1 } }, seed: 1, extra: 'x' });
    assert.equal(formatChanges(changes), 'copycat.train.epochs 2 → 4, extra (unset) → x');
    assert.equal(formatChanges(settingChanges({ a: 1, b: 1, c: 1 }, { a: 2, b: 2, c: 2 }), 2), 'a 1 → 2, b 1 → 2, +1 more');
  });

  it('give a copycat a new key when its own settings, its stolen sets or the arithmetic change, and the oracle none', () => {
    const dir = tmpDir('keys-run');
    const base = openRun({ profile: 'smoke', dir });
    const epochs = openRun({ profile: 'smoke', dir, overrides: { copycat: { train: { epochs: 5 } } } });
    const npd = openRun({ profile: 'smoke', dir, overrides: { data: { npdImages: 10 } } });
    assert.equal(oracleVariant(epochs).key, oracleVariant(base).key);
    assert.notEqual(copycatVariant(epochs, 'NPD-SL').key, copycatVariant(base, 'NPD-SL').key);
    assert.equal(stolenVariant(npd, 'PD-SL').key, stolenVariant(base, 'PD-SL').key, 'PD-SL does not read the NPD settings');
    assert.notEqual(copycatVariant(npd, 'NPD-SL').key, copycatVariant(base, 'NPD-SL').key);
    assert.equal(copycatVariant(npd, 'PD-SL').key, copycatVariant(base, 'PD-SL').key);
    assert.notEqual(copycatVariant(base, 'NPD-SL', 'bf16').key, copycatVariant(base, 'NPD-SL', 'strict').key);
    assert.notEqual(oracleVariant(base, 'bf16').key, oracleVariant(base, 'strict').key);
  });

  it('find a finished variant made in the other arithmetic, unless asked for the exact one', () => {
    const run = openRun({ profile: 'smoke', dir: tmpDir('twin-run') });
    const strict = oracleVariant(run, 'strict', true);
    assert.equal(oracleVariant(run, 'bf16').key, oracleVariant(run, 'bf16', true).key, 'nothing finished yet: its own');
    put(strict.dir, 'result.json', {});
    assert.equal(oracleVariant(run, 'bf16').key, strict.key, 'a bf16 process reuses the float32 oracle');
    assert.notEqual(oracleVariant(run, 'bf16', true).key, strict.key);
    assert.equal(copycatVariant(run, 'NPD-SL', 'bf16').inputs.upstream.oracle, strict.key, 'and its copycats attack that oracle');
  });
});

describe('runs made before step keys', () => {
  it('are moved into the current config\'s variants when they match it, else kept aside and never reused', () => {
    const dir = tmpDir('legacy-run');
    // The smoke profile: 1000 oracle images, 500 test images, 2 epochs, resnet-9; 1000 NPD, 500 PD.
    put(dir, 'oracle/result.json', { architecture: 'resnet-9', trainImages: 1000, testImages: 500, history: history(2), metrics: { accuracy: 0.3, macroAverage: 0.2 } });
    put(dir, 'oracle/model/model.json', '{}');
    put(dir, 'stolen/NPD-SL.json', stolenSet('NPD-SL', 1000, { mode: 'label' }));
    put(dir, 'stolen/PD-SL.json', stolenSet('PD-SL', 500, 'label'));
    put(dir, 'stolen/queries.jsonl', '{"header":1}\n');
    put(dir, 'stolen/summary.json', '{}');
    put(dir, 'copycats/NPD-SL/result.json', { architecture: 'resnet-9', history: history(2), metrics: { accuracy: 0.25, macroAverage: 0.2 }, agreement: 0.5, performanceOverTarget: 1 });
    put(dir, 'copycats/NPD-SL/model/model.json', '{}');
    put(dir, 'copycats/PD-SL/result.json', { architecture: 'resnet-9', history: history(3) });
    put(dir, 'copycats/PD-SL/model/model.json', '{}');
    put(dir, 'copycats/NPD_PD-SL/checkpoints/latest.json', '{}');
    const said: string[] = [];
    const log = console.log;
    console.log = (s: string) => said.push(s);
    let run;
    try {
      run = openRun({ profile: 'smoke', dir });
      oracleVariant(run, 'strict');
    } finally {
      console.log = log;
    }
    const oracle = oracleVariant(run, 'strict');
    assert.ok(fs.existsSync(path.join(oracle.dir, 'result.json')) && fs.existsSync(path.join(oracle.model, 'model.json')));
    assert.equal(readStepRecord(oracle.record).adopted, 'adopted from the layout before step keys');
    assert.ok(!fs.existsSync(path.join(dir, 'oracle', 'result.json')));
    for (const set of ['NPD-SL', 'PD-SL'] as const) {
      const v = stolenVariant(run, set, 'strict');
      assert.ok(fs.existsSync(path.join(v.dir, `${set}.json`)), set);
      // Finished as stealLabels leaves a set: its summary is there, so notebooks 02-04 read it back.
      assert.equal(readStolenLabels(run, set).n, set === 'NPD-SL' ? 1000 : 500);
      assert.deepEqual(JSON.parse(fs.readFileSync(v.result, 'utf8')).histogram.rows.slice(0, 4).map((r: { count: number }) => r.count), set === 'NPD-SL' ? [334, 333, 333, 0] : [167, 167, 166, 0]);
    }
    assert.ok(!fs.existsSync(path.join(dir, 'stolen', 'summary.json')), 'the derived summary is dropped');
    assert.ok(fs.readdirSync(path.join(dir, 'stolen')).some((f) => /^answers-[0-9a-f]{12}\.jsonl$/.test(f)), 'the paid answers stay, under the oracle key');
    assert.ok(fs.existsSync(copycatVariant(run, 'NPD-SL', 'strict').result));
    assert.ok(!fs.existsSync(copycatVariant(run, 'PD-SL', 'strict').dir), '3 epochs do not stand for the 2 the config asks');
    assert.match(said.join('\n'), /PD-SL: the result made before step keys does not match the current config \(3 epochs ≠ 2\); kept in .*copycats\/PD-SL\/legacy-/);
    const rows = variantRows(run);
    const legacy = rows.filter((r) => r.key.startsWith('legacy-'));
    assert.deepEqual(legacy.map((r) => [r.name, r.current]).sort(), [['NPD+PD-SL', false], ['PD-SL', false]]);
    assert.match(legacy.find((r) => r.name === 'NPD+PD-SL')!.note!, /not reused: it never finished/);
    assert.ok(rows.find((r) => r.step === 'copycat' && r.name === 'NPD-SL')!.current);
  });
});
