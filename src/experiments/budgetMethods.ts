import { backendReport } from '../platform/backend';
import { deepMerge, type ExperimentConfig } from '../config';
import type { SelectionStrategy } from '../querySelection';
import { readJson, type Run } from '../run';
import { trainCopycat, type CopycatResult } from '../steps/copycatStep';
import type { StepHooks } from '../steps/inputs';
import { stealLabels } from '../steps/stealStep';
import { npdCandidatesForRun } from '../steps/activeStealing';
import { stolenVariant } from '../steps/variants';
import { resolveTrainConfig, type SemiSupervisedConfig } from '../train';
import { scaleSchedule } from '../train/schedule';
import type { StolenSetSummary } from '../stolenLabels';

/**
 * The query-budget curve of issue 52: copy quality against the number of paid queries, hard labels,
 * for four ways of spending them: random (the paper's), an active strategy choosing in rounds, a
 * semi-supervised copy that also learns from the unqueried pool, and both. Every point trains the same
 * number of optimizer steps (the profile's recipe at the largest budget), so a small budget is not
 * judged after a handful of steps nor a large one given more compute.
 *
 * Each point is an ordinary keyed variant of the run (stolen/NPD-SL/<key>, copycats/NPD-SL/<key>),
 * so a killed curve resumes where it stopped, a finished point is reused, and `npm run runs` lists them.
 */

export const BUDGET_METHODS = ['random', 'active', 'semi', 'both'] as const;
export type BudgetMethod = (typeof BUDGET_METHODS)[number];
export const DEFAULT_CURVE_BUDGETS = [5000, 10000, 20000, 40000, 80000];

export interface BudgetMethodPoint {
  budget: number;
  method: BudgetMethod;
  /** The active strategy (active, both), else 'random'. */
  selection: SelectionStrategy;
  queries: number;
  costUsd: number;
  epochs: number;
  steps: number;
  accuracy: number;
  macroAverage: number;
  agreement: number;
  performanceOverTarget: number;
  /** Agreement with the oracle on the pool's held-out NPD images (null without a pool). */
  unseenNpdAgreement: number | null;
  /** Pool images learnt from without labels (semi, both), else 0. */
  poolImages: number;
  /** Copycat training and scoring (selection rounds are in the stolen set's time). */
  wallSeconds: number;
  seed: number;
  copycatKey: string;
  stolenKey: string;
  backend: string;
}

export interface BudgetCurveOptions {
  budgets?: number[];
  methods?: BudgetMethod[];
  /** The active strategy of 'active' and 'both' (default 'entropy'). */
  strategy?: SelectionStrategy;
  /** Rounds of the active strategy (default 4) and the epochs of each round's copy (default 4). */
  rounds?: number;
  roundEpochs?: number;
  /** Optimizer steps of every point (default: the profile's copycat epochs at the largest budget). */
  steps?: number;
  /** FixMatch settings of 'semi' and 'both' (DEFAULT_SEMI_SUPERVISED otherwise). */
  semi?: Partial<SemiSupervisedConfig>;
  hooks?: StepHooks;
}

/** Epochs that give about `steps` optimizer steps on `images` images at `batchSize`. */
export function epochsForSteps(steps: number, images: number, batchSize: number): number {
  return Math.max(1, Math.round(steps / Math.ceil(images / batchSize)));
}

/** The settings of one point: the run's config with the budget, the selection and the recipe changed. */
export function pointConfig(base: ExperimentConfig, budget: number, method: BudgetMethod, o: Required<Pick<BudgetCurveOptions, 'strategy' | 'rounds' | 'roundEpochs' | 'steps'>> & Pick<BudgetCurveOptions, 'semi'>, available: number): ExperimentConfig {
  const recipe = resolveTrainConfig(base.copycat.train);
  const images = Math.min(budget, available);
  const epochs = epochsForSteps(o.steps, images, recipe.batchSize);
  const active = method === 'active' || method === 'both';
  const semi = method === 'semi' || method === 'both';
  return deepMerge(base, {
    data: { npdImages: budget >= available ? null : budget },
    // Buying everything leaves nothing to choose: 'active' at the full budget is the random set.
    query: { selection: active && budget < available ? { strategy: o.strategy, rounds: o.rounds, roundEpochs: o.roundEpochs } : null },
    copycat: {
      train: {
        epochs, schedule: scaleSchedule(recipe.schedule, recipe.epochs, epochs),
        semiSupervised: semi ? { method: 'fixmatch', ...(o.semi ?? {}) } : null,
      },
    },
  });
}

/**
 * Computes (or reads back) every point of the curve, smallest budget first, random before the others
 * at each budget. Budgets above the NPD images the source holds become "all of them".
 */
export async function budgetMethodsCurve(run: Run, opts: BudgetCurveOptions = {}): Promise<BudgetMethodPoint[]> {
  const log = opts.hooks?.log ?? ((s: string) => console.log(s));
  const available = (await npdCandidatesForRun(run, log)).n;
  const budgets = [...new Set((opts.budgets ?? DEFAULT_CURVE_BUDGETS).map((b) => Math.min(b, available)))].sort((a, b) => a - b);
  const methods = opts.methods ?? [...BUDGET_METHODS];
  const recipe = resolveTrainConfig(run.config.copycat.train);
  const o = {
    strategy: opts.strategy ?? 'entropy', rounds: opts.rounds ?? 4, roundEpochs: opts.roundEpochs ?? 4, semi: opts.semi,
    steps: opts.steps ?? recipe.epochs * Math.ceil(Math.max(...budgets) / recipe.batchSize),
  };
  if (!run.config.data.pool && methods.some((m) => m === 'semi' || m === 'both')) {
    throw new Error('budget curve: the semi and both methods learn from the unqueried pool, but data.pool is null in this run\'s config');
  }
  const points: BudgetMethodPoint[] = [];
  for (const budget of budgets) {
    for (const method of methods) {
      const config = pointConfig(run.config, budget, method, o, available);
      const point: Run = { ...run, config };
      log(`budget curve: ${budget} queries, ${method}${method === 'active' || method === 'both' ? ` (${o.strategy})` : ''}: ${config.copycat.train.epochs} epochs, ~${o.steps} steps`);
      await stealLabels(point, { log, sets: ['NPD-SL'], signal: opts.hooks?.signal });
      const r: CopycatResult = await trainCopycat(point, 'NPD-SL', opts.hooks ?? {});
      const stolen = readJson<StolenSetSummary>(stolenVariant(point, 'NPD-SL').result, 'stolen NPD-SL summary');
      points.push({
        budget, method, selection: config.query.selection ? (config.query.selection.strategy ?? 'random') : 'random',
        queries: stolen.queries, costUsd: stolen.costUsd, epochs: config.copycat.train.epochs!, steps: config.copycat.train.epochs! * Math.ceil(r.trainImages / recipe.batchSize),
        accuracy: r.metrics.accuracy, macroAverage: r.metrics.macroAverage, agreement: r.agreement, performanceOverTarget: r.performanceOverTarget,
        unseenNpdAgreement: r.unseenNpd?.agreement ?? null, poolImages: r.pool?.usedForTraining ? r.pool.trainImages : 0,
        wallSeconds: r.wallSeconds, seed: config.seed, copycatKey: r.key ?? '', stolenKey: stolen.key, backend: r.backend ?? backendReport().label,
      });
    }
  }
  return points;
}
