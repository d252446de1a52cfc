import { strict as assert } from 'assert';
import { copycatTrain, PROFILES } from '../src/config';
import { defaultBudgets, epochsForSteps, pointConfig } from '../src/experiments/budgetMethods';

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
});
