/**
 * Classification metrics as the Copycat CNN authors report them.
 *
 * Their evaluation script (github.com/jeiks/Stealing_DL_Models, Framework/oracle/test.py) prints
 *   Average: {accuracy in %} ({n} images)
 *   Micro Average: sklearn f1_score(average='micro')
 *   Macro Average: sklearn f1_score(average='macro')
 * so "Micro Average" is micro F1 (equal to accuracy for single-label predictions) and "Macro Average"
 * is the unweighted mean of the per-class F1 scores. The paper's "performance over the target" is the
 * copycat's macro F1 divided by the oracle's.
 */

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Number of true samples of this class. */
  support: number;
}

export interface Metrics {
  n: number;
  accuracy: number;
  /** Micro-averaged F1 (the seed's "Micro Average"); equals accuracy for single-label data. */
  microAverage: number;
  /** Macro-averaged F1 (the seed's "Macro Average"). */
  macroAverage: number;
  /** Macro-averaged precision and recall, for readers who want them. */
  macroPrecision: number;
  macroRecall: number;
  perClass: ClassMetrics[];
  /** confusion[true][predicted] counts. */
  confusion: number[][];
  classNames: string[];
}

/** True/predicted class indices -> accuracy, micro/macro F1, per-class table and confusion matrix. */
export function computeMetrics(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  classNames?: readonly string[],
): Metrics {
  if (yTrue.length !== yPred.length) {
    throw new Error(`computeMetrics: yTrue has ${yTrue.length} labels but yPred has ${yPred.length}; expected equal lengths`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`computeMetrics: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (classNames && classNames.length !== numClasses) {
    throw new Error(`computeMetrics: classNames has ${classNames.length} names, expected numClasses = ${numClasses}`);
  }
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i];
    const p = yPred[i];
    if (!(Number.isInteger(t) && t >= 0 && t < numClasses)) {
      throw new Error(`computeMetrics: yTrue[${i}] = ${t} is not a class index in 0..${numClasses - 1}`);
    }
    if (!(Number.isInteger(p) && p >= 0 && p < numClasses)) {
      throw new Error(`computeMetrics: yPred[${i}] = ${p} is not a class index in 0..${numClasses - 1}`);
    }
    confusion[t][p]++;
    if (t === p) correct++;
  }
  const n = yTrue.length;
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < numClasses; c++) {
    const tp = confusion[c][c];
    let support = 0;
    let predicted = 0;
    for (let k = 0; k < numClasses; k++) {
      support += confusion[c][k];
      predicted += confusion[k][c];
    }
    // sklearn's zero_division default: an undefined ratio counts as 0.
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({ precision, recall, f1, support });
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  // sklearn averages over the union of labels present in yTrue or yPred; classes that never occur
  // contribute nothing there, so they are left out of the macro mean here as well.
  const present = perClass.filter((m, c) => m.support > 0 || confusion.some((row) => row[c] > 0));
  const accuracy = n > 0 ? correct / n : 0;
  return {
    n,
    accuracy,
    microAverage: accuracy,
    macroAverage: mean(present.map((m) => m.f1)),
    macroPrecision: mean(present.map((m) => m.precision)),
    macroRecall: mean(present.map((m) => m.recall)),
    perClass,
    confusion,
    classNames: classNames ? [...classNames] : perClass.map((_, c) => String(c)),
  };
}

/** The three lines the seed replication printed, byte for byte in the same format. */
export function formatSeedReport(m: Metrics): string {
  return [
    `Average: ${(100 * m.accuracy).toFixed(2)}% (${m.n} images)`,
    `Micro Average: ${m.microAverage.toFixed(6)}`,
    `Macro Average: ${m.macroAverage.toFixed(6)}`,
  ].join('\n');
}

/** Per-class precision/recall/F1/support table, sklearn classification_report style. */
export function formatPerClassTable(m: Metrics): string {
  const w = Math.max(12, ...m.classNames.map((s) => s.length));
  const num = (x: number) => x.toFixed(4).padStart(10);
  const lines = [`${'class'.padEnd(w)} ${'precision'.padStart(10)} ${'recall'.padStart(10)} ${'f1'.padStart(10)} ${'support'.padStart(8)}`];
  m.perClass.forEach((c, i) => {
    lines.push(`${m.classNames[i].padEnd(w)} ${num(c.precision)} ${num(c.recall)} ${num(c.f1)} ${String(c.support).padStart(8)}`);
  });
  lines.push(`${'macro avg'.padEnd(w)} ${num(m.macroPrecision)} ${num(m.macroRecall)} ${num(m.macroAverage)} ${String(m.n).padStart(8)}`);
  lines.push(`${'accuracy'.padEnd(w)} ${''.padStart(10)} ${''.padStart(10)} ${num(m.accuracy)} ${String(m.n).padStart(8)}`);
  return lines.join('\n');
}

/** Confusion matrix as text, rows = true class, columns = predicted class. */
export function formatConfusion(m: Metrics): string {
  const width = Math.max(5, ...m.confusion.flat().map((v) => String(v).length + 1));
  const header = ' '.repeat(4) + m.confusion.map((_, c) => String(c).padStart(width)).join('');
  const rows = m.confusion.map((row, r) => `${String(r).padStart(3)}:` + row.map((v) => String(v).padStart(width)).join(''));
  return [header, ...rows].join('\n');
}

/** Fraction of positions where two label sequences agree (copycat vs oracle "fidelity"). */
export function agreement(predsA: ArrayLike<number>, predsB: ArrayLike<number>): number {
  if (predsA.length !== predsB.length) {
    throw new Error(`agreement: predsA has ${predsA.length} labels but predsB has ${predsB.length}; expected equal lengths`);
  }
  if (predsA.length === 0) throw new Error('agreement: empty label arrays');
  let same = 0;
  for (let i = 0; i < predsA.length; i++) if (predsA[i] === predsB[i]) same++;
  return same / predsA.length;
}

/** The paper's "performance over the target": copycat macro F1 / oracle macro F1. */
export function performanceOverTarget(copycatMacro: number, oracleMacro: number): number {
  if (!(oracleMacro > 0)) throw new Error(`performanceOverTarget: oracle macro average must be > 0, got ${oracleMacro}`);
  return copycatMacro / oracleMacro;
}

/**
 * Per class of the oracle's answers: of the test images the oracle puts in class c, the share the copycat
 * puts there too (null for a class the oracle never predicts). Where agreement is lost, class by class.
 */
export function perClassAgreement(oraclePreds: ArrayLike<number>, copyPreds: ArrayLike<number>, numClasses: number): (number | null)[] {
  if (oraclePreds.length !== copyPreds.length) {
    throw new Error(`perClassAgreement: oraclePreds has ${oraclePreds.length} labels but copyPreds has ${copyPreds.length}; expected equal lengths`);
  }
  const total = new Array<number>(numClasses).fill(0);
  const same = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < oraclePreds.length; i++) {
    const c = oraclePreds[i];
    if (!(c >= 0 && c < numClasses)) throw new Error(`perClassAgreement: oraclePreds[${i}] = ${c} is not a class in 0..${numClasses - 1}`);
    total[c]++;
    if (copyPreds[i] === c) same[c]++;
  }
  return total.map((t, c) => (t ? same[c] / t : null));
}

/** What every scored model reports: its test-set metrics, how long it took and on what backend. */
export interface Scores {
  metrics: Metrics;
  wallSeconds: number;
  /** The backend and arithmetic that computed it (backendReport().label). */
  backend: string;
}

/** A copy's scores: also how closely it follows the oracle on the same test images. */
export interface CopyScores extends Scores {
  /** Share of test images where the copy answers as the oracle does. */
  agreement: number;
  /** Copy macro F1 / oracle macro F1 (the paper's "performance over target"). */
  performanceOverTarget: number;
}
