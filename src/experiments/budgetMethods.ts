import { backendReport } from '../platform/backend';
import { copycatTrain, deepMerge, type ExperimentConfig } from '../config';
import type { SelectionStrategy } from '../querySelection';
import type { Run } from '../run';
import { trainCopycat, type CopycatResult } from '../steps/copycatStep';
import type { StepHooks } from '../steps/inputs';
import { stealLabels } from '../steps/stealStep';
import { npdCandidatesForRun } from '../steps/activeStealing';
import { copycatVariant, isFinished, stolenVariant } from '../steps/variants';
import { resolveTrainConfig, type SemiSupervisedConfig, type TrainConfig } from '../train';
import { scaleSchedule } from '../train/schedule';

/**
 * The query-budget curve of issue 52: copy quality against the number of paid queries, hard labels,
 * for four ways of spending them: random (the paper's), an active strategy choosing in rounds, a
 * semi-supervised copy that also learns from the unqueried pool, and both. Every point trains the same
 * number of optimizer steps (the profile's recipe on all the attacker's NPD images), so a small budget is not
 * judged after a handful of steps nor a large one given more compute.
 *
 * Each point is an ordinary keyed variant of the run (stolen/NPD-SL/<key>, copycats/NPD-SL/<key>),
 * so a killed curve resumes where it stopped, a finished point is reused, and `npm run runs` lists them.
 */

export const BUDGET_METHODS = ['random', 'active', 'semi', 'both'] as const;
export type BudgetMethod = (typeof BUDGET_METHODS)[number];

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
  /** Default: defaultBudgets of the attacker's NPD images. */
  budgets?: number[];
  methods?: BudgetMethod[];
  /** The active strategy of 'active' and 'both' (default 'balanced': the best of the four at 20k on full-2,
   *  docs/results.md#query-efficiency-issue-52). */
  strategy?: SelectionStrategy;
  /** Rounds of the active strategy (default 4) and the epochs of each round's copy (default 8, as the archived
   *  full-2 points were bought, so `finishedOnly` finds them; query.selection's own default stays 4). */
  rounds?: number;
  roundEpochs?: number;
  /** Optimizer steps of every point (default: the profile's copycat epochs on all the attacker's NPD images). */
  steps?: number;
  /** FixMatch settings of 'semi' and 'both' (DEFAULT_SEMI_SUPERVISED otherwise). */
  semi?: Partial<SemiSupervisedConfig>;
  /**
   * Read back the points already finished (e.g. an archived run's curve) and compute nothing: a point not
   * finished is named in the log and left out, no image is asked and no copy trained.
   */
  finishedOnly?: boolean;
  hooks?: StepHooks;
}

/** Epochs that give about `steps` optimizer steps on `images` images at `batchSize`. */
export function epochsForSteps(steps: number, images: number, batchSize: number): number {
  return Math.max(1, Math.round(steps / Math.ceil(images / batchSize)));
}

/**
 * The settings of one point: the run's config with the budget, the selection and the recipe changed, and
 * nothing else, so the point at the profile's own budget and epochs is the run's own copycat (reused).
 * `collection` is the NPD images the attacker holds (the profile's data.npdImages, or all the source has).
 */
export function pointConfig(
  base: ExperimentConfig, budget: number, method: BudgetMethod,
  o: Required<Pick<BudgetCurveOptions, 'strategy' | 'rounds' | 'roundEpochs' | 'steps'>> & Pick<BudgetCurveOptions, 'semi'>, collection: number,
): ExperimentConfig {
  const recipe = resolveTrainConfig(copycatTrain(base, 'NPD-SL'));
  const images = Math.min(budget, collection);
  const epochs = epochsForSteps(o.steps, images, recipe.batchSize);
  const active = (method === 'active' || method === 'both') && budget < collection;
  const semi = method === 'semi' || method === 'both';
  const changes: Partial<TrainConfig> = {
    ...(epochs !== recipe.epochs ? { epochs, schedule: scaleSchedule(recipe.schedule, recipe.epochs, epochs) } : {}),
    ...(semi ? { semiSupervised: { method: 'fixmatch', ...(o.semi ?? {}) } as TrainConfig['semiSupervised'] } : {}),
  };
  return deepMerge(base, {
    data: { npdImages: budget >= collection ? base.data.npdImages : budget },
    // Buying everything leaves nothing to choose: 'active' at the full budget is the random set.
    query: active ? { selection: { strategy: o.strategy, rounds: o.rounds, roundEpochs: o.roundEpochs, candidates: base.data.npdImages } } : {},
    // Every point is an NPD-SL copy: its changes go where they win over copycat.train (the NPD-SL entry of
    // copycat.trainBySet), and its key is the same whichever place the merged recipe came from.
    copycat: Object.keys(changes).length ? { trainBySet: { 'NPD-SL': changes } } : {},
  });
}

/** The profile's curve: 1/16 … all of the attacker's NPD images, at two significant digits (5k … 80k on full). */
export function defaultBudgets(collection: number): number[] {
  const two = (x: number) => Number(x.toPrecision(2));
  return [...new Set([16, 8, 4, 2, 1].map((d) => Math.min(collection, Math.max(1, two(collection / d)))))];
}

/**
 * Computes (or reads back) every point of the curve, smallest budget first, random before the others
 * at each budget. Budgets above the NPD images the attacker holds become "all of them".
 */
export async function budgetMethodsCurve(run: Run, opts: BudgetCurveOptions = {}): Promise<BudgetMethodPoint[]> {
  const log = opts.hooks?.log ?? ((s: string) => console.log(s));
  const collection = run.config.data.npdImages ?? (await npdCandidatesForRun(run, log)).n;
  const budgets = [...new Set((opts.budgets ?? defaultBudgets(collection)).map((b) => Math.min(b, collection)))].sort((a, b) => a - b);
  const methods = opts.methods ?? [...BUDGET_METHODS];
  const recipe = resolveTrainConfig(copycatTrain(run.config, 'NPD-SL'));
  const o = {
    strategy: opts.strategy ?? 'balanced', rounds: opts.rounds ?? 4, roundEpochs: opts.roundEpochs ?? 8, semi: opts.semi,
    // The profile's recipe on all the attacker's images, whichever budgets this call computes.
    steps: opts.steps ?? recipe.epochs * Math.ceil(collection / recipe.batchSize),
  };
  if (!run.config.data.pool && methods.some((m) => m === 'semi' || m === 'both')) {
    throw new Error('budget curve: the semi and both methods learn from the unqueried pool, but data.pool is null in this run\'s config');
  }
  const points: BudgetMethodPoint[] = [];
  for (const budget of budgets) {
    for (const method of methods) {
      const config = pointConfig(run.config, budget, method, o, collection);
      const point: Run = { ...run, config };
      const epochs = resolveTrainConfig(copycatTrain(config, 'NPD-SL')).epochs;
      const what = `${budget} queries, ${method}${config.query.selection ? ` (${o.strategy})` : ''}: ${epochs} epochs, ~${o.steps} steps`;
      if (opts.finishedOnly && !(isFinished(stolenVariant(point, 'NPD-SL')) && isFinished(copycatVariant(point, 'NPD-SL')))) {
        log(`budget curve: ${what}: not computed yet (left out: finishedOnly)`);
        continue;
      }
      log(`budget curve: ${what}`);
      const stolen = (await stealLabels(point, { log, sets: ['NPD-SL'], signal: opts.hooks?.signal })).sets['NPD-SL'];
      const r: CopycatResult = await trainCopycat(point, 'NPD-SL', opts.hooks ?? {});
      points.push({
        budget, method, selection: config.query.selection ? (config.query.selection.strategy ?? 'random') : 'random',
        queries: stolen.queries, costUsd: stolen.costUsd, epochs, steps: epochs * Math.ceil(r.trainImages / recipe.batchSize),
        accuracy: r.metrics.accuracy, macroAverage: r.metrics.macroAverage, agreement: r.agreement, performanceOverTarget: r.performanceOverTarget,
        unseenNpdAgreement: r.unseenNpd?.agreement ?? null, poolImages: r.pool?.usedForTraining ? r.pool.trainImages : 0,
        wallSeconds: r.wallSeconds, seed: config.seed, copycatKey: r.key ?? '', stolenKey: stolen.key, backend: r.backend ?? backendReport().label,
      });
    }
  }
  return points;
}
