import { strict as assert } from 'assert';
import {
  perClassAgreement,
  agreement, computeMetrics, formatConfusion, formatPerClassTable, formatSeedReport, performanceOverTarget,
} from '../src/metrics';

const close = (a: number, b: number, tol = 1e-9) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

describe('metrics', () => {
  // Hand-computed: confusion rows (true) = [2 1 0], [0 1 1], [0 0 1].
  // class 0: P = 2/2, R = 2/3, F1 = 0.8; class 1: P = 1/2, R = 1/2, F1 = 0.5; class 2: P = 1/2, R = 1, F1 = 2/3.
  const yTrue = [0, 0, 0, 1, 1, 2];
  const yPred = [0, 0, 1, 1, 2, 2];

  it('computes confusion, per-class and averages of a hand-checked 3-class example', () => {
    const m = computeMetrics(yTrue, yPred, 3, ['a', 'b', 'c']);
    assert.deepEqual(m.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]]);
    assert.equal(m.n, 6);
    close(m.accuracy, 4 / 6);
    close(m.microAverage, 4 / 6);
    close(m.perClass[0].f1, 0.8);
    close(m.perClass[1].f1, 0.5);
    close(m.perClass[2].f1, 2 / 3);
    close(m.perClass[2].precision, 0.5);
    close(m.perClass[2].recall, 1);
    assert.deepEqual(m.perClass.map((c) => c.support), [3, 2, 1]);
    close(m.macroAverage, (0.8 + 0.5 + 2 / 3) / 3);
    close(m.macroPrecision, (1 + 0.5 + 0.5) / 3);
    close(m.macroRecall, (2 / 3 + 0.5 + 1) / 3);
  });

  it('leaves classes that occur in neither yTrue nor yPred out of the macro mean (as sklearn does)', () => {
    const m3 = computeMetrics(yTrue, yPred, 3);
    const m5 = computeMetrics(yTrue, yPred, 5);
    close(m5.macroAverage, m3.macroAverage);
    assert.equal(m5.perClass[4].support, 0);
  });

  it('counts a predicted-but-absent class with F1 = 0 in the macro mean', () => {
    // true: [0,0], pred: [0,1] -> class 0: P=1, R=1/2, F1=2/3; class 1: P=0, R=0 (no support), F1=0.
    const m = computeMetrics([0, 0], [0, 1], 2);
    close(m.macroAverage, (2 / 3 + 0) / 2);
  });

  it('prints the seed report format exactly', () => {
    // 8 of 10 right, two classes of 5: class 0 TP 4 FN 1 FP 1 -> F1 0.8, class 1 likewise.
    const t = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    const p = [0, 0, 0, 0, 1, 1, 1, 1, 1, 0];
    const text = formatSeedReport(computeMetrics(t, p, 2));
    assert.equal(text, 'Average: 80.00% (10 images)\nMicro Average: 0.800000\nMacro Average: 0.800000');
  });

  it('formats per-class and confusion tables with one row per class', () => {
    const m = computeMetrics(yTrue, yPred, 3, ['airplane', 'car', 'bird']);
    const table = formatPerClassTable(m);
    assert.match(table, /^airplane\s+1\.0000\s+0\.6667\s+0\.8000\s+3$/m);
    assert.match(table, /^macro avg/m);
    assert.equal(formatConfusion(m).split('\n').length, 4);
  });

  it('rejects bad input with a message naming the field', () => {
    assert.throws(() => computeMetrics([0, 1], [0], 2), /yTrue has 2 labels but yPred has 1/);
    assert.throws(() => computeMetrics([0, 3], [0, 1], 3), /yTrue\[1\] = 3/);
    assert.throws(() => computeMetrics([0], [0], 2, ['x']), /classNames has 1/);
  });

  it('agreement and performance over target', () => {
    close(agreement([1, 2, 3, 4], [1, 2, 0, 4]), 0.75);
    close(performanceOverTarget(0.3324, 0.8306), 0.3324 / 0.8306);
    assert.throws(() => agreement([1], [1, 2]), /equal lengths/);
    assert.throws(() => performanceOverTarget(0.5, 0), /must be > 0/);
  });

  it('per-class agreement: of the oracle\'s answers of each class, the share the copy gives too', () => {
    //             oracle: 0 0 0 1 1 2 ; copy agrees on 2 of the three 0s, 1 of the two 1s, never predicts 3
    assert.deepEqual(perClassAgreement([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 4), [2 / 3, 1 / 2, 1, null]);
    assert.throws(() => perClassAgreement([0], [0, 1], 2), /oraclePreds has 1 labels but copyPreds has 2/);
    assert.throws(() => perClassAgreement([5], [5], 2), /oraclePreds\[0\] = 5 is not a class in 0\.\.1/);
  });
});
