import * as fs from 'fs';
import { assertTrainingBackend, backendReport } from '../platform/backend';
import { LocalOracle } from '../oracle/local';
import type { AnswerMode } from '../oracle/types';
import { appendJsonLine, readJsonLines, Run } from '../run';
import { labelImages, stolenImageSet } from '../stolenLabels';
import { fitCopycat } from '../steps/copycatStep';
import { npdForRun } from '../steps/inputs';
import { oracleModelDir } from '../steps/oracleStep';
import { pickImages } from '../data/split';
import { resolveTrainConfig } from '../train';
import { copycatTrain } from '../config';
import { CIFAR10_CLASSES } from '../types';
import { copycatTrainFor, fitBudgets } from './trainLength';

/** One point of the query-budget curve. */
export interface BudgetPoint {
  mode: AnswerMode;
  queries: number;
  costUsd: number;
  epochs: number;
  accuracy: number;
  macroAverage: number;
  agreement: number;
  performanceOverTarget: number;
  /** Training and evaluation of this point's copycat (labeling excluded: it is bought once per mode). */
  wallSeconds: number;
  backend: string;
}

export interface QueryBudgetOptions {
  budgets?: number[];
  modes?: AnswerMode[];
  /**
   * Copycat epochs for the largest budget (cosine schedule, so it scales with the epoch count); smaller
   * budgets get more epochs (see epochsFor) so that a
   * copy from 1k queries is not judged after a handful of optimizer steps.
   */
  epochs?: number;
  log?: (s: string) => void;
}

export const DEFAULT_BUDGETS = [1000, 5000, 10000, 20000, 40000, 80000];

/**
 * Epochs for `budget` images: the step count of the largest budget, capped at 4x the base epochs (beyond
 * that, tiny sets only overfit).
 */
export function epochsFor(budget: number, largest: number, baseEpochs: number): number {
  return Math.max(baseEpochs, Math.min(4 * baseEpochs, Math.round((baseEpochs * largest) / budget)));
}

/**
 * Copy quality against the number of queries, for hard labels and for probabilities. The first `b` NPD
 * images of the run (a seeded random order) make the budget-`b` set, so larger budgets extend smaller
 * ones; each mode's answers are bought once (largest budget) and cached. Points already computed are read
 * back from experiments/query_budget/points.jsonl, so the experiment resumes after a kill.
 */
export async function queryBudgetCurve(run: Run, opts: QueryBudgetOptions = {}): Promise<BudgetPoint[]> {
  const log = opts.log ?? ((s: string) => console.log(s));
  assertTrainingBackend('query-budget experiment');
  const npd = await npdForRun(run, log);
  const requested = opts.budgets ?? DEFAULT_BUDGETS;
  const budgets = fitBudgets(requested, npd.n);
  if (requested.some((b) => b > npd.n)) log(`query budget: this run has ${npd.n} NPD images; budgets above that use all ${npd.n}`);
  const modes = opts.modes ?? ['label', 'probabilities'];
  const largest = Math.max(...budgets);
  const baseEpochs = opts.epochs ?? resolveTrainConfig(copycatTrain(run.config, 'NPD-SL')).epochs;
  const dir = run.path('experiments', 'query_budget');
  fs.mkdirSync(dir, { recursive: true });
  const pointsFile = `${dir}/points.jsonl`;
  const done: BudgetPoint[] = readJsonLines<BudgetPoint>(pointsFile);
  const images = pickImages(npd, Array.from({ length: largest }, (_, i) => i));
  for (const mode of modes) {
    const oracle = await LocalOracle.fromDir(oracleModelDir(run), {
      answer: mode, pricePer1000: run.config.query.pricePer1000, classNames: [...CIFAR10_CLASSES],
    });
    const stolen = await labelImages(oracle, { ...images, labels: undefined, soft: undefined }, {
      cacheFile: `${dir}/queries-${mode}.jsonl`, name: `budget-${mode}`, batchSize: run.config.query.batchSize,
    }).finally(() => oracle.dispose());
    const full = stolenImageSet(images, stolen, { verify: false });
    for (const b of budgets) {
      if (done.some((p) => p.mode === mode && p.queries === b)) continue;
      const epochs = epochsFor(b, largest, baseEpochs);
      const data = pickImages(full, Array.from({ length: b }, (_, i) => i));
      const t0 = Date.now();
      const fit = await fitCopycat(run, data, `${dir}/${mode}-${b}`, {
        label: `copycat ${mode} ${b} queries`, train: { ...copycatTrainFor(run, epochs), targets: mode === 'label' ? 'hard' : 'soft' }, hooks: { log },
      });
      const point: BudgetPoint = {
        mode, queries: b, costUsd: (b * run.config.query.pricePer1000) / 1000, epochs,
        accuracy: fit.metrics.accuracy, macroAverage: fit.metrics.macroAverage, agreement: fit.agreement, performanceOverTarget: fit.performanceOverTarget,
        wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label,
      };
      appendJsonLine(pointsFile, point);
      done.push(point);
    }
  }
  return done.filter((p) => modes.includes(p.mode) && budgets.includes(p.queries)).sort((a, b) => a.mode.localeCompare(b.mode) || a.queries - b.queries);
}
