import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/platform/backend';
import { imageHashes } from '../src/oracle/identity';
import type { Oracle, OracleAnswer } from '../src/oracle/types';
import { openRun, stolenFile } from '../src/run';
import { loadStolenLabels } from '../src/stolenLabels';
import { budgetMethodsCurve } from '../src/experiments/budgetMethods';
import { trainCopycat } from '../src/steps/copycatStep';
import { poolForRun } from '../src/steps/inputs';
import { trainOracle } from '../src/steps/oracleStep';
import { oracleForRun, stealLabels } from '../src/steps/stealStep';
import { stolenVariant } from '../src/steps/variants';
import { ImageSet } from '../src/types';
import { CountingOracle, tmpDir } from './oracleFixtures';
import { npdFolder, tinyOverrides } from './stepFixtures';

/**
 * Fewer paid queries (issue 52) on real steps at toy size: NPD-SL bought in rounds chosen by a copy,
 * resumed after a crash mid-round without any image asked twice, and a semi-supervised copycat that
 * learns from an unqueried pool the oracle never sees.
 */

/** Answers like `inner` until `failAfter` images were answered in total, then throws (a crash). */
class CrashingOracle extends CountingOracle {
  constructor(inner: Oracle, private readonly failAfter: number) {
    super(inner);
  }
  override async query(batch: ImageSet): Promise<OracleAnswer[]> {
    if (this.images + batch.n > this.failAfter) throw new Error('simulated crash');
    return super.query(batch);
  }
}

describe('query efficiency: active rounds and the unqueried pool', function () {
  this.timeout(600_000);
  let dir = '';
  let overrides: object = {};
  const logs: string[] = [];
  /** Every image any oracle of this file answered. */
  const everAsked = new Set<string>();
  const hooks = { log: (s: string) => logs.push(s), onBatch: () => undefined };

  before(async () => {
    await initBackend();
    dir = tmpDir('query-efficiency');
    const npd = await npdFolder(160, 'qe-npd');
    const pool = await npdFolder(48, 'qe-pool');
    const base = tinyOverrides(npd, 1, { dir: pool, heldOutImages: 16 }) as { data: object; copycat: { train: object }; query?: object };
    overrides = {
      ...base,
      data: { ...base.data, npdImages: 64 },
      query: { batchSize: 16, selection: { strategy: 'entropy', rounds: 2, roundEpochs: 1 } },
      copycat: { ...base.copycat, train: { ...base.copycat.train, semiSupervised: { method: 'fixmatch', ratio: 1, threshold: 0.2 } } },
    };
  });

  it('buys the budget in rounds; a crash mid-round resumes without asking any image twice', async () => {
    const run = openRun({ profile: 'smoke', dir, overrides });
    await trainOracle(run, hooks);
    const local = await oracleForRun(run);
    try {
      const crash = new CrashingOracle(local, 32 + 16);
      await assert.rejects(stealLabels(run, { oracle: crash, log: hooks.log }), /simulated crash/);
      assert.equal(crash.images, 48, 'round 1 (32 images) and one batch of round 2 were answered before the crash');
      const rounds = JSON.parse(fs.readFileSync(path.join(stolenVariant(run, 'NPD-SL').dir, 'rounds.json'), 'utf8'));
      assert.equal(rounds.rounds.length, 2, 'round 2 was chosen (and recorded) before it was asked');
      const again = new CountingOracle(local);
      const summary = await stealLabels(run, { oracle: again, log: hooks.log });
      for (const h of again.seen.keys()) assert.ok(!crash.seen.has(h), 'an image paid before the crash was asked again');
      assert.equal(crash.images + again.images - 64 /* PD-SL */, 64, 'the NPD budget was paid exactly once');
      assert.equal(again.repeats, 0);
      const sel = summary.sets['NPD-SL'].selection!;
      assert.deepEqual(sel.rounds.map((r) => [r.strategy, r.images]), [['random', 32], ['entropy', 32]]);
      assert.equal(summary.sets['NPD-SL'].n, 64);
      const stolen = loadStolenLabels(stolenFile(stolenVariant(run, 'NPD-SL').dir, 'NPD-SL'));
      assert.equal(new Set(stolen.hashes).size, 64);
      for (const o of [crash, again]) for (const h of o.seen.keys()) everAsked.add(h);
      const rerun = new CountingOracle(local);
      await stealLabels(run, { oracle: rerun, log: hooks.log });
      assert.equal(rerun.images, 0, 'a finished set is reused without a query');
    } finally {
      local.dispose();
    }
  });

  it('a semi-supervised copycat learns from the pool, which the oracle never saw, and is scored on its held-out slice', async () => {
    const tensors = tf.memory().numTensors;
    const run = openRun({ profile: 'smoke', dir, overrides });
    const npdSet = loadStolenLabels(stolenFile(stolenVariant(run, 'NPD-SL').dir, 'NPD-SL'));
    const pdSet = loadStolenLabels(stolenFile(stolenVariant(run, 'PD-SL').dir, 'PD-SL'));
    const paid = new Set([...npdSet.hashes, ...pdSet.hashes]);
    const pool = (await poolForRun(run, paid))!;
    // 160 NPD candidates, 64 bought: the other 96 join the 48 - 16 held-out images of the extra folder.
    assert.deepEqual([pool.summary.trainImages, pool.summary.heldOutImages, pool.summary.fromExtraSources, pool.summary.fromQueriedSource], [128, 16, 32, 96]);
    const poolHashes = [...imageHashes(pool.train.images, pool.train.n, 32 * 32 * 3), ...imageHashes(pool.heldOut.images, pool.heldOut.n, 32 * 32 * 3)];
    assert.equal(everAsked.size, 128, 'the first test asked 64 NPD and 64 PD images');
    for (const h of poolHashes) assert.ok(!paid.has(h) && !everAsked.has(h), 'a pool image was sent to the oracle');
    const r = await trainCopycat(run, 'NPD-SL', hooks);
    assert.equal(r.pool?.usedForTraining, true);
    assert.equal(r.pool?.trainImages, 128);
    assert.ok(r.history.every((h) => h.pseudoLabelRate !== undefined), 'no pseudo-label rate recorded');
    assert.equal(r.unseenNpd?.images, 16);
    assert.ok(r.unseenNpd!.agreement >= 0 && r.unseenNpd!.agreement <= 1);
    assert.equal(r.queries, 64, 'the cost counts the paid images only');
    assert.equal(tf.memory().numTensors, tensors, 'the copycat step leaked tensors');
  });

  it('the budget curve reads back its finished points and, told finishedOnly, computes none of the rest', async () => {
    // Random purchases and a supervised recipe, so each method of the curve is its own variant.
    const { copycat } = overrides as { copycat: { train: object } };
    const run = openRun({ profile: 'smoke', dir, overrides: { ...overrides, query: { batchSize: 16 }, copycat: { ...copycat, train: { ...copycat.train, semiSupervised: null } } } });
    const opts = { budgets: [32], methods: ['random' as const], steps: 4, hooks };
    const [made] = await budgetMethodsCurve(run, opts);
    assert.equal(made.queries, 32);
    const folders = () => ['stolen', 'copycats'].flatMap((k) => fs.readdirSync(run.path(k), { recursive: true }).map(String)).sort();
    const before = folders();
    logs.length = 0;
    const read = await budgetMethodsCurve(run, { ...opts, budgets: [32, 48], methods: ['random', 'semi'], finishedOnly: true });
    assert.deepEqual(read.map((p) => [p.budget, p.method]), [[32, 'random']]);
    assert.deepEqual({ ...read[0], wallSeconds: 0 }, { ...made, wallSeconds: 0 }, 'the finished point reads back as it was made');
    assert.equal(logs.filter((l) => /not computed yet/.test(l)).length, 3, logs.join('\n'));
    assert.ok(logs.some((l) => /48 queries, semi: .*not computed yet/.test(l)), 'a missing point is named');
    assert.deepEqual(folders(), before, 'finishedOnly started a step');
  });
});
