import { strict as assert } from 'assert';
import seedrandom from 'seedrandom';
import { resolveSelection, roundSizes, sampleCandidates, selectQueries } from '../src/querySelection';

/** Row-major probabilities from rows. */
const P = (rows: number[][]) => Float32Array.from(rows.flat());

describe('active query selection (src/querySelection.ts)', () => {
  const rng = () => seedrandom('sel');

  it('splits a budget into rounds that add up to it', () => {
    assert.deepEqual(roundSizes(10, 4), [3, 3, 2, 2]);
    assert.deepEqual(roundSizes(3, 5), [1, 1, 1]);
    assert.equal(roundSizes(20000, 4).reduce((a, b) => a + b, 0), 20000);
  });

  it('entropy and margin take the candidates the copy is least sure of', () => {
    const probs = P([[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.5, 0.49, 0.01], [0.9, 0.05, 0.05]]);
    const cands = [10, 11, 12, 13];
    assert.deepEqual(selectQueries('entropy', { candidates: cands, count: 2, probs, numClasses: 3, rng: rng() }), [11, 12]);
    assert.deepEqual(selectQueries('margin', { candidates: cands, count: 1, probs, numClasses: 3, rng: rng() }), [11]);
    assert.deepEqual(selectQueries('margin', { candidates: cands, count: 2, probs, numClasses: 3, rng: rng() }), [11, 12]);
  });

  it('balanced seeks the classes the stolen labels lack, most confident first', () => {
    // Bought so far: 6 of class 0, none of 1 or 2. Four candidates look like class 1 or 2.
    const probs = P([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7], [0.95, 0.03, 0.02]]);
    const picked = selectQueries('balanced', { candidates: [0, 1, 2, 3, 4, 5], count: 2, probs, numClasses: 3, boughtPerClass: [6, 0, 0], rng: rng() });
    assert.deepEqual(picked, [1, 3], 'one of each missing class, the most confident one');
  });

  it('kcenter covers the space: the point farthest from what is bought, then the next farthest', () => {
    const features = Float32Array.from([0, 0, 1, 0, 10, 0, 10, 1, 5, 5]); // 5 candidates in 2-D
    const boughtFeatures = Float32Array.from([0, 1]);
    const picked = selectQueries('kcenter', { candidates: [0, 1, 2, 3, 4], count: 2, features, boughtFeatures, dim: 2, numClasses: 3, rng: rng() });
    assert.deepEqual(picked, [2, 4], '(10,0) is farthest from (0,1); then (5,5), not (10,1) beside it');
  });

  it('random is a seeded draw; every strategy refuses to pick more than is left and names missing inputs', () => {
    const a = selectQueries('random', { candidates: [1, 2, 3, 4, 5, 6], count: 3, numClasses: 3, rng: rng() });
    const b = selectQueries('random', { candidates: [1, 2, 3, 4, 5, 6], count: 3, numClasses: 3, rng: rng() });
    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, 3);
    assert.throws(() => selectQueries('random', { candidates: [1], count: 2, numClasses: 3, rng: rng() }), /only 1 candidates are left/);
    assert.throws(() => selectQueries('entropy', { candidates: [1, 2], count: 1, numClasses: 3, rng: rng() }), /needs the copy's probabilities/);
    assert.deepEqual(sampleCandidates([1, 2, 3], 5, 's'), [1, 2, 3]);
    assert.equal(sampleCandidates(Array.from({ length: 100 }, (_, i) => i), 10, 's').length, 10);
  });

  it('validates the config, naming the field', () => {
    assert.equal(resolveSelection(null).strategy, 'random');
    assert.throws(() => resolveSelection({ strategy: 'coreset' as never }), /query.selection.strategy must be one of random, balanced, entropy, margin, kcenter/);
    assert.throws(() => resolveSelection({ rounds: 0 }), /query.selection.rounds must be an integer >= 1/);
  });
});
