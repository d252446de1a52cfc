import * as fs from 'fs';
import { assertTrainingBackend, backendReport } from '../platform/backend';
import { AnswerTransform, gaussianNoiseTransform, reverseSigmoidTransform, roundingTransform } from '../oracle/answers';
import { LocalOracle } from '../oracle/local';
import { agreement } from '../metrics';
import { appendJsonLine, readJson, readJsonLines, Run, writeJsonLines } from '../run';
import { labelImages, stolenImageSet } from '../stolenLabels';
import { fitCopycat } from '../steps/copycatStep';
import { cifarForRun, npdForRun } from '../steps/inputs';
import { oracleModelDir, readOracleResult } from '../steps/oracleStep';
import { CIFAR10_CLASSES } from '../types';
import { copycatTrainFor } from './trainLength';

/** A way for the oracle's owner to answer: what it reveals and how it perturbs it. */
export interface Defence {
  name: string;
  answer: string; // 'label' | 'probabilities' | 'rounded:1' | 'topk:3'
  transforms?: () => AnswerTransform[];
}

const TOP_ONE = 'top-1 label only';

/** The defences of the experiment; undefended probabilities are the attacker's best case. */
export const DEFENCES: Defence[] = [
  { name: 'none (full probabilities)', answer: 'probabilities' },
  { name: 'rounded to 1 decimal', answer: 'probabilities', transforms: () => [roundingTransform(1)] },
  { name: TOP_ONE, answer: 'label' },
  { name: 'Gaussian noise σ=0.1', answer: 'probabilities', transforms: () => [gaussianNoiseTransform(0.1, 1)] },
  { name: 'reverse sigmoid β=0.7 γ=0.4', answer: 'probabilities', transforms: () => [reverseSigmoidTransform(0.7, 0.4)] },
];

export interface DefenceRow {
  defence: string;
  /** Accuracy of the defended oracle's labels for honest users on the test set. */
  oracleAccuracy: number;
  /** Accuracy lost for honest users relative to the undefended oracle. */
  oracleAccuracyLoss: number;
  copycatAccuracy: number;
  copycatMacro: number;
  agreement: number;
  performanceOverTarget: number;
  queries: number;
  /**
   * Share of the attacker's queries whose answered top-1 class is the undefended oracle's. At 1 the
   * attacker can drop the perturbed probabilities and keep their arg-max: the 'top-1 label only' copy.
   */
  topOneKept: number;
  /** Honest-user scoring, labeling, training and evaluation of this row. */
  wallSeconds: number;
  backend: string;
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '');

/**
 * For each defence: how much the oracle's honest users lose (test accuracy of its perturbed answers) and
 * how good a copy trained on its answers to the run's NPD images gets (soft targets when the answer
 * reveals probabilities). Rows already computed are read back from experiments/defences/rows.jsonl.
 */
export async function defenceExperiment(run: Run, opts: { defences?: Defence[]; epochs?: number; log?: (s: string) => void } = {}): Promise<DefenceRow[]> {
  const log = opts.log ?? ((s: string) => console.log(s));
  assertTrainingBackend('defence experiment');
  const dir = run.path('experiments', 'defences');
  fs.mkdirSync(dir, { recursive: true });
  const rowsFile = `${dir}/rows.jsonl`;
  const rows: DefenceRow[] = readJsonLines<DefenceRow>(rowsFile);
  const oracleResult = readOracleResult(run);
  const npd = await npdForRun(run, log);
  const { test } = await cifarForRun(run);
  const oracleFor = (answer: string, transforms?: AnswerTransform[]) => LocalOracle.fromDir(oracleModelDir(run), {
    answer, transforms, pricePer1000: run.config.query.pricePer1000, classNames: [...CIFAR10_CLASSES],
  });
  const answersTo = async (name: string, answer: string, transforms?: AnswerTransform[]) => {
    const oracle = await oracleFor(answer, transforms);
    return labelImages(oracle, { ...npd, labels: undefined, soft: undefined }, {
      cacheFile: `${dir}/queries-${slug(name)}.jsonl`, name: `defence-${slug(name)}`, batchSize: run.config.query.batchSize,
    }).finally(() => oracle.dispose());
  };
  // The undefended top-1 answers, for topOneKept: the 'top-1 label only' row's answers (shared cache).
  let reference: number[] | undefined;
  const topOneKept = async (labels: number[]) => {
    reference ??= (await answersTo(TOP_ONE, 'label')).labels;
    return agreement(labels, reference);
  };
  for (const d of opts.defences ?? DEFENCES) {
    const done = rows.find((r) => r.defence === d.name);
    if (done && done.topOneKept !== undefined) continue;
    if (done) {
      // A row recorded before topOneKept existed: its answers are all in the query cache, so this asks nothing.
      done.topOneKept = await topOneKept((await answersTo(d.name, d.answer, d.transforms?.())).labels);
      writeJsonLines(rowsFile, rows);
      continue;
    }
    const t0 = Date.now();
    // Honest users: the label the defended API returns for each test image.
    const honest = await oracleFor(d.answer, d.transforms?.());
    const answers = await honest.query({ ...test, labels: undefined }).finally(() => honest.dispose());
    const oracleAccuracy = answers.filter((a, i) => a.label === test.labels![i]).length / test.n;
    const stolen = await answersTo(d.name, d.answer, d.transforms?.());
    const data = stolenImageSet(npd, stolen, { verify: false });
    const fit = await fitCopycat(run, data, `${dir}/${slug(d.name)}`, {
      label: `copycat vs ${d.name}`, train: { ...(opts.epochs ? copycatTrainFor(run, opts.epochs) : {}), targets: data.soft ? 'soft' : 'hard' }, hooks: { log },
    });
    const row: DefenceRow = {
      defence: d.name, oracleAccuracy, oracleAccuracyLoss: oracleResult.metrics.accuracy - oracleAccuracy,
      copycatAccuracy: fit.metrics.accuracy, copycatMacro: fit.metrics.macroAverage, agreement: fit.agreement,
      performanceOverTarget: fit.performanceOverTarget, queries: stolen.queries.distinct, topOneKept: await topOneKept(stolen.labels),
      wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label,
    };
    appendJsonLine(rowsFile, row);
    rows.push(row);
  }
  return rows;
}
