import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { copycatTrain, deepMerge, PROFILES, resolveConfig } from '../src/config';
import { appendJsonLine, openRun, readJsonLines } from '../src/run';
import { pickImages } from '../src/data/split';
import { subsetImages } from '../src/data/subset';
import { curveTestLabel, curveTestSet } from '../src/steps/inputs';
import { ImageSet } from '../src/types';
import { pointConfig, BudgetMethod } from '../src/experiments/budgetMethods';
import { SelectionStrategy } from '../src/querySelection';
import { copycatVariant, oracleVariant, stolenVariant } from '../src/steps/variants';

describe('experiment config', () => {
  afterEach(() => delete process.env.COPYCAT_OVERRIDES);

  it('merges overrides deeply without touching the profile table', () => {
    const c = resolveConfig('quick', { copycat: { train: { epochs: 9 } } });
    assert.equal(c.copycat.train.epochs, 9);
    assert.equal(c.copycat.train.learningRate, PROFILES.quick.copycat.train.learningRate, 'siblings of an overridden field survive');
    assert.ok(c.copycat.train.learningRate! > 0);
    assert.notEqual(PROFILES.quick.copycat.train.epochs, 9);
  });

  it('applies $COPYCAT_OVERRIDES and explains bad JSON', () => {
    process.env.COPYCAT_OVERRIDES = '{"data":{"npdImages":123}}';
    assert.equal(resolveConfig('smoke').data.npdImages, 123);
    process.env.COPYCAT_OVERRIDES = '{not json';
    assert.throws(() => resolveConfig('smoke'), /COPYCAT_OVERRIDES must be a JSON object/);
  });

  it('rejects an unknown profile by name', () => {
    assert.throws(() => resolveConfig('huge'), /unknown profile 'huge'.*smoke, quick, full/);
  });

  it('gives each copycat set its recipe: copycat.trainBySet merged deeply over copycat.train', () => {
    const c = resolveConfig('smoke', { copycat: { train: { epochs: 6, augmentation: { crop: true, flip: true, pad: 4 } }, trainBySet: { 'NPD+PD-SL': { epochs: 3, augmentation: { probability: 0.5 } } } } });
    assert.equal(copycatTrain(c, 'NPD-SL'), c.copycat.train, 'a set without an entry trains copycat.train itself');
    const both = copycatTrain(c, 'NPD+PD-SL');
    assert.equal(both.epochs, 3);
    assert.deepEqual(both.augmentation, { crop: true, flip: true, pad: 4, probability: 0.5 });
    assert.equal(both.learningRate, c.copycat.train.learningRate);
  });

  it('the full profile trains its three copies to fit the hour: fewer epochs on the larger sets', () => {
    const f = PROFILES.full;
    const images = { 'NPD-SL': 80_000, 'PD-SL': 50_000, 'NPD+PD-SL': 130_000 } as const;
    const seen = f.copycat.sets.map((s) => copycatTrain(f, s).epochs! * images[s]);
    assert.ok(seen[2] <= seen[0], 'NPD+PD-SL sees no more images than NPD-SL');
    assert.ok(f.copycat.sets.every((s) => copycatTrain(f, s).augmentation?.probability === 0.5));
  });

  it('full-v1 is the recipe of the archived full-2 run: every step and budget point of it has its key', () => {
    const archive = path.join(__dirname, '..', 'data', 'reference', 'full-2');
    const run = openRun({ profile: 'full-v1', dir: fs.mkdtempSync(path.join(os.tmpdir(), 'run-')) });
    const has = (step: string, key: string) => fs.existsSync(path.join(archive, step, key, 'step.json'));
    assert.ok(has('oracle', oracleVariant(run).key));
    for (const set of ['NPD-SL', 'PD-SL', 'NPD+PD-SL']) assert.ok(has(`copycats/${set.replace('+', '_')}`, copycatVariant(run, set).key), set);
    // The budget points at equal steps (12 epochs x 625 batches), their changes now in copycat.trainBySet.
    // The active points were bought in rounds whose copies trained 8 epochs (--round-epochs 8); the others ignore
    // the selection settings (pointConfig sets query.selection only for active and both).
    const o = { rounds: 4, roundEpochs: 8, steps: 7500 };
    const points: [number, BudgetMethod, SelectionStrategy?][] = [[5000, 'random'], [5000, 'semi'], [10000, 'random'],
      [20000, 'random'], [20000, 'semi'], [40000, 'random'], [79987, 'semi'],
      [20000, 'active', 'entropy'], [20000, 'both', 'entropy'], [20000, 'active', 'margin'], [20000, 'active', 'kcenter'],
      [20000, 'active', 'balanced'], [20000, 'both', 'balanced'],
      [40000, 'active', 'balanced'], [10000, 'active', 'balanced'], [5000, 'active', 'balanced'], [10000, 'semi'],
      [40000, 'semi'], [40000, 'both', 'balanced'], [10000, 'both', 'balanced']];
    for (const [budget, method, strategy = 'entropy'] of points) {
      const point = { ...run, config: pointConfig(run.config, budget, method, { ...o, strategy }, 79987) };
      assert.ok(has('copycats/NPD-SL', copycatVariant(point, 'NPD-SL').key), `${budget} ${method} ${strategy}`);
      assert.ok(has('stolen/NPD-SL', stolenVariant(point, 'NPD-SL').key), `${budget} ${method} ${strategy}: stolen set`);
    }
    // The hour-long full profile trains other copies (and oracle) than the archive holds.
    const now = openRun({ profile: 'full', dir: run.dir });
    assert.ok(!has('oracle', oracleVariant(now).key));
  });

  it('replaces arrays instead of merging them', () => {
    assert.deepEqual(deepMerge({ a: [1, 2, 3] }, { a: [4] }), { a: [4] });
  });

  it('openRun writes the current config.json, and a run opened without a profile keeps its own', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-'));
    const env = process.env.COPYCAT_PROFILE;
    delete process.env.COPYCAT_PROFILE;
    try {
      openRun({ profile: 'smoke', dir });
      openRun({ profile: 'smoke', dir, overrides: { seed: 7 } });
      assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).seed, 7);
      // The step results keep their own inputs (step.json), so no config.prev-* copies pile up.
      assert.deepEqual(fs.readdirSync(dir), ['config.json']);
      assert.equal(openRun({ dir }).config.profile, 'smoke', 'the lab opening a reproduce run gets its profile');
      assert.equal(openRun({ dir: path.join(dir, 'fresh') }).config.profile, 'quick');
    } finally {
      if (env === undefined) delete process.env.COPYCAT_PROFILE;
      else process.env.COPYCAT_PROFILE = env;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('resumable JSON-lines results', () => {
  it('reads back what was appended, treats a missing file as empty and names a damaged line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jsonl-'));
    try {
      const file = path.join(dir, 'sub', 'points.jsonl');
      assert.deepEqual(readJsonLines(file), []);
      appendJsonLine(file, { a: 1 });
      appendJsonLine(file, { a: 2 });
      assert.deepEqual(readJsonLines<{ a: number }>(file).map((r) => r.a), [1, 2]);
      fs.appendFileSync(file, '{"a": 3');
      assert.throws(() => readJsonLines(file), /points\.jsonl:3 is not valid JSON/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('image subsets', () => {
  const set: ImageSet = {
    images: Uint8Array.from({ length: 10 * 2 * 2 * 3 }, (_, i) => Math.floor(i / 12)),
    n: 10, height: 2, width: 2, labels: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), ids: Array.from({ length: 10 }, (_, i) => `i${i}`),
  };

  it('takes a seeded subset whose pixels, labels and ids stay together', () => {
    const a = subsetImages(set, 4, 3);
    const b = subsetImages(set, 4, 3);
    assert.deepEqual(a.labels, b.labels);
    assert.equal(a.n, 4);
    for (let i = 0; i < a.n; i++) {
      assert.equal(a.images[i * 12], a.labels![i]);
      assert.equal(a.ids![i], `i${a.labels![i]}`);
    }
    assert.notDeepEqual(Array.from(subsetImages(set, 4, 4).labels!), Array.from(a.labels!));
  });

  it('returns the whole set for null or a larger n, and rejects nonsense', () => {
    assert.equal(subsetImages(set, null, 1), set);
    assert.equal(subsetImages(set, 99, 1), set);
    assert.throws(() => subsetImages(set, 0, 1), /positive integer/);
  });

  it('learning curves use the configured test subset and say so; final scores keep the whole test set', () => {
    const run = (curveTestImages: number | null) => ({ config: { ...PROFILES.quick, seed: 1, data: { ...PROFILES.quick.data, curveTestImages } } }) as Parameters<typeof curveTestSet>[0];
    const sub = curveTestSet(run(4), set);
    assert.equal(sub.n, 4);
    for (let i = 0; i < sub.n; i++) assert.equal(sub.images[i * 12], sub.labels![i], 'pixels and labels stay together');
    assert.equal(curveTestSet(run(null), set), set);
    assert.equal(curveTestLabel(PROFILES.quick.data), 'test (2000-image subset)');
    assert.equal(curveTestLabel(PROFILES.full.data), 'test');
    assert.equal(curveTestLabel({ curveTestImages: 500, testImages: 500 }), 'test');
  });

  it('pickImages keeps the requested order', () => {
    assert.deepEqual(Array.from(pickImages(set, [9, 0]).labels!), [9, 0]);
  });
});
