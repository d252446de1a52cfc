import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { copycatTrain, deepMerge, PROFILES } from '../src/config';
import { openRun } from '../src/run';
import { stolenVariant } from '../src/steps/variants';
import { defaultBudgets, epochsForSteps, pointConfig } from '../src/experiments/budgetMethods';
import { roundCopyRecipe } from '../src/steps/activeStealing';
import { learningRateAt } from '../src/train/schedule';

describe('the query-budget curve by method: its points (src/experiments/budgetMethods.ts)', () => {
  const full = PROFILES.full;
  // The profile's own length: its NPD-SL epochs on the 79,987 images (625 batches of 128).
  const o = { strategy: 'entropy' as const, rounds: 4, roundEpochs: 4, steps: copycatTrain(full, 'NPD-SL').epochs! * 625 };

  it('budgets: 5k … 80k on the full profile\'s 79,987 NPD images, the same fractions elsewhere', () => {
    assert.deepEqual(defaultBudgets(79987), [5000, 10000, 20000, 40000, 79987]);
    assert.deepEqual(defaultBudgets(1000), [63, 130, 250, 500, 1000]);
  });

  it('every point trains the same number of steps; the profile\'s own point is the profile\'s own copycat', () => {
    assert.equal(epochsForSteps(7500, 20000, 128), 48);
    const own = pointConfig(full, 79987, 'random', o, 79987);
    assert.deepEqual(own.copycat, full.copycat, 'the 80k random point must reuse the run\'s NPD-SL copycat');
    assert.deepEqual(own.data, full.data);
    const small = pointConfig(full, 20000, 'both', o, 79987);
    assert.equal(small.data.npdImages, 20000);
    assert.equal(copycatTrain(small, 'NPD-SL').epochs, epochsForSteps(o.steps, 20000, 128));
    assert.equal(copycatTrain(small, 'PD-SL').epochs, copycatTrain(full, 'PD-SL').epochs, 'a point changes only the NPD-SL recipe');
    assert.deepEqual(small.query.selection, { strategy: 'entropy', rounds: 4, roundEpochs: 4, candidates: null });
    assert.equal(copycatTrain(small, 'NPD-SL').semiSupervised?.method, 'fixmatch');
    const activeAll = pointConfig(full, 79987, 'active', o, 79987);
    assert.equal(activeAll.query.selection, undefined, 'buying everything leaves nothing to choose');
  });

  it('a selection round\'s copy runs its whole schedule in its own epochs: full rate, then decay', () => {
    for (const profile of [PROFILES.full, PROFILES['full-v1']]) {
      // The 20k point stretches the NPD-SL recipe to ~48 epochs; a round's copy trains 4 of them.
      const point = pointConfig(profile, 20000, 'active', o, 79987);
      const r = roundCopyRecipe(point, 4, 7);
      assert.equal(r.epochs, 4);
      assert.equal(r.seed, 7);
      assert.equal(r.semiSupervised, null, 'a round\'s copy only ranks what to buy next');
      const batches = 40; // 5k images
      const lr = (e: number, b: number) => learningRateAt(r.learningRate, r.schedule, e, b, batches, r.epochs);
      const peak = Math.max(...Array.from({ length: 4 * batches }, (_, i) => lr(Math.floor(i / batches), i % batches)));
      assert.ok(peak > 0.95 * r.learningRate, `the round's copy must reach its full rate, peaked at ${peak}`);
      assert.ok(lr(3, batches - 1) < 0.05 * r.learningRate, `and decay by its last step, ended at ${lr(3, batches - 1)}`);
    }
  });

  it('active and both buy the same images at a budget: one stolen set, chosen by copies that never see the pool', () => {
    const run = openRun({ profile: 'full-v1', dir: fs.mkdtempSync(path.join(os.tmpdir(), 'run-')) });
    const stolenKey = (method: 'random' | 'active' | 'semi' | 'both', config = run.config) =>
      stolenVariant({ ...run, config: pointConfig(config, 20000, method, o, 79987) }, 'NPD-SL').key;
    assert.equal(stolenKey('both'), stolenKey('active'));
    assert.equal(stolenKey('semi'), stolenKey('random'));
    assert.notEqual(stolenKey('active'), stolenKey('random'));
    // What the round copies learn with does choose the images.
    const smoother = deepMerge(run.config, { copycat: { train: { labelSmoothing: 0.1 } } });
    assert.notEqual(stolenKey('active', smoother), stolenKey('active'));
    fs.rmSync(run.dir, { recursive: true, force: true });
  });
});
