import * as fs from 'fs';
import * as path from 'path';
import { assertTrainingBackend, backendReport } from '../platform/backend';
import { compareWithOracle, evaluateModel } from '../evaluate';
import { saveModel } from '../io';
import { CopyScores, formatSeedReport, Metrics } from '../metrics';
import { createModel } from '../models';
import { formatChanges, readJson, Run, settingChanges, stolenFile, writeJson } from '../run';
import { loadStolenSetWithImages, selectByHashes } from '../steal';
import { npdCandidatesForRun } from './activeStealing';
import { concatImageSets, stolenImageSet } from '../stolenLabels';
import { EpochRecord, train, TrainConfig, TrainOptions } from '../train';
import { ImageSet } from '../types';
import { copycatTrain, CopycatSetName } from '../config';
import { cifarForRun, curveTestSet, npdForRun, pdForRun, poolForRun, StepHooks, stepLog } from './inputs';
import { formatPoolSummary, PoolSummary } from '../data/pool';
import { loadStolenLabels } from '../stolenLabels';
import { HeldOutNpd, heldOutNpdForRun, UnseenNpdAgreement, unseenNpdAgreement } from './unseenNpd';
import { oracleEvaluation, readOracleResult } from './oracleStep';
import { readStolenLabels } from './stealStep';
import { trainingProgress } from '../display/trainingProgress';
import { trainingSummaries } from './trainingSummaries';
import { beginVariant, copycatVariant, isFinished, outsideStolenFile, selectionActive, StolenSetName, stolenPartsOf, stolenVariant } from './variants';

export interface CopycatResult extends CopyScores {
  set: CopycatSetName;
  architecture: string;
  trainImages: number;
  queries: number;
  testPredictions: number[];
  history: EpochRecord[];
  trainImagesPerSecond: number;
  /** The variant's key (absent in results written before step keys). */
  key?: string;
  /** Agreement with the oracle on the pool's held-out NPD images (absent without a pool). */
  unseenNpd?: UnseenNpdAgreement;
  /** The unqueried pool of the run (semi-supervised copies learn from its training images). */
  pool?: PoolSummary & { usedForTraining: boolean };
}

/** The fake dataset of one copycat: images with the oracle's answers only, never ground truth. */
export async function stolenSetForRun(run: Run, set: CopycatSetName, log?: (s: string) => void): Promise<{ data: ImageSet; queries: number }> {
  const part = async (name: StolenSetName) => {
    if (outsideStolenFile(run, name)) {
      // Labels from an outside black box: its images come from the source its file records.
      const outside = await loadStolenSetWithImages(stolenFile(stolenVariant(run, name).dir, name));
      return { data: outside.set, queries: outside.stolen.queries.distinct };
    }
    const stolen = readStolenLabels(run, name);
    // Bought in rounds (query.selection): the images the rounds chose, found among all NPD candidates.
    const images = name === 'PD-SL' ? await pdForRun(run)
      : selectionActive(run.config) ? selectByHashes(await npdCandidatesForRun(run, log), stolen.hashes) : await npdForRun(run, log);
    return { data: stolenImageSet(images, stolen), queries: stolen.queries.distinct };
  };
  const parts = [];
  for (const name of stolenPartsOf(set)) parts.push(await part(name));
  return parts.length === 1 ? parts[0] : { data: concatImageSets(...parts.map((p) => p.data)), queries: parts.reduce((t, p) => t + p.queries, 0) };
}

/** What training and scoring one copycat gives (shared by the copycat step and the experiments). */
export interface CopycatFit {
  metrics: Metrics;
  agreement: number;
  performanceOverTarget: number;
  testPredictions: number[];
  history: EpochRecord[];
  trainImagesPerSecond: number;
  unseenNpd?: UnseenNpdAgreement;
}

/**
 * Trains a fresh copycat of the run's copycat architecture on `data` (images + stolen answers only),
 * checkpointing under `dir`, saves it to `dir`/model and scores it on the test set against the oracle.
 */
export async function fitCopycat(
  run: Run,
  data: ImageSet,
  dir: string,
  opts: {
    label: string; train?: Partial<TrainConfig>; hooks?: StepHooks; teacher?: TrainOptions['teacher']; seed?: number;
    /** Whose recipe (copycat.trainBySet) to train with; NPD-SL by default, the set the experiments study. */
    set?: CopycatSetName;
    /** The unqueried pool's training images, for a semi-supervised recipe (TrainConfig.semiSupervised). */
    unlabeled?: ImageSet;
    /** The pool's held-out images with the oracle's labels: the copy is scored on them too. */
    heldOutNpd?: HeldOutNpd;
  },
): Promise<CopycatFit> {
  const hooks = opts.hooks ?? {};
  const log = stepLog(hooks);
  const oracle = readOracleResult(run);
  const { test } = await cifarForRun(run);
  const cfg = run.config.copycat;
  // The seed draws the initial weights, the batch order and the augmentation; the run's seed by default.
  const seed = opts.seed ?? run.config.seed;
  const model = createModel(cfg.architecture, { seed: seed + 100 });
  try {
    log(`${opts.label}: ${cfg.architecture} on ${data.n} images with stolen answers`);
    const bar = trainingProgress(opts.label);
    const result = await train(model, data, { seed, ...copycatTrain(run.config, opts.set ?? 'NPD-SL'), ...opts.train }, {
      checkpointDir: path.join(dir, 'checkpoints'),
      // Test accuracy per epoch, for the learning curves only (nothing is selected on it).
      val: curveTestSet(run, test),
      onBatch: hooks.onBatch ?? bar.onBatch,
      onEpoch: hooks.onEpoch,
      signal: hooks.signal,
      log,
      teacher: opts.teacher,
      unlabeled: opts.unlabeled,
    });
    bar.finish();
    await saveModel(model, path.join(dir, 'model'));
    const ev = await evaluateModel(model, test);
    const cmp = compareWithOracle(ev, oracleEvaluation(oracle));
    log(`${formatSeedReport(ev.metrics)}\nAgreement with the oracle: ${(100 * cmp.agreement).toFixed(2)}%  Performance over target: ${(100 * cmp.performanceOverTarget).toFixed(2)}%`);
    const unseenNpd = opts.heldOutNpd ? await unseenNpdAgreement(model, opts.heldOutNpd) : undefined;
    if (unseenNpd) log(`Agreement on ${unseenNpd.images} NPD images it never saw: ${(100 * unseenNpd.agreement).toFixed(2)}%`);
    return {
      metrics: ev.metrics, agreement: cmp.agreement, performanceOverTarget: cmp.performanceOverTarget,
      testPredictions: Array.from(ev.predictions), history: result.history, trainImagesPerSecond: result.imagesPerSecond,
      ...(unseenNpd ? { unseenNpd } : {}),
    };
  } finally {
    model.dispose();
  }
}

/**
 * Trains one copycat on its stolen set, saves it under copycats/<set>/<key>/ and scores it against the
 * oracle. The key covers its settings, the stolen sets and the oracle (src/steps/variants.ts): a
 * finished variant is reused, a killed one resumes from its own checkpoint, `force` starts it afresh.
 */
export async function trainCopycat(run: Run, set: CopycatSetName, hooks: StepHooks = {}): Promise<CopycatResult> {
  const log = stepLog(hooks);
  const v = copycatVariant(run, set, undefined, hooks.force);
  if (beginVariant(v, { label: `copycat ${set}`, force: hooks.force, log }) === 'reuse') return readJson<CopycatResult>(v.result, `copycat ${set} result`);
  assertTrainingBackend(`copycat training (${set})`);
  const t0 = Date.now();
  const { data, queries } = await stolenSetForRun(run, set, log);
  const pool = await poolForRun(run, queriedHashes(run), log);
  const recipe = copycatTrain(run.config, set);
  const semi = recipe.semiSupervised != null;
  // Leaf by leaf, as the step lines name other changes: what this set's entry changes in copycat.train.
  const own = settingChanges(run.config.copycat.train, recipe);
  if (own.length) log(`copycat ${set}: copycat.trainBySet['${set}'] changes copycat.train's ${formatChanges(own, Infinity)}`);
  if (pool) log(formatPoolSummary(pool.summary) + (semi ? '' : ' (this recipe does not learn from it: copycat.train.semiSupervised is null)'));
  else if (semi) log(`copycat ${set}: semi-supervised with no unqueried pool (data.pool is null): the unlabeled stream is the stolen set's own images`);
  const heldOutNpd = pool && pool.heldOut.n > 0 ? await heldOutNpdForRun(run, pool.heldOut) : undefined;
  const summaries = trainingSummaries(v, hooks, log);
  try {
    // The TensorBoard writer takes the epochs first, then the caller's onEpoch (trainingSummaries chains it).
    const fit = await fitCopycat(run, data, v.dir, {
      label: `copycat ${set}`, set, hooks: { ...hooks, onEpoch: summaries.onEpoch }, unlabeled: semi ? pool?.train : undefined, heldOutNpd,
    });
    const out: CopycatResult = {
      set, architecture: run.config.copycat.architecture, trainImages: data.n, queries, ...fit,
      wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label, key: v.key,
      ...(pool ? { pool: { ...pool.summary, usedForTraining: semi } } : {}),
    };
    writeJson(v.result, out);
    return out;
  } finally {
    summaries.close();
  }
}

/**
 * Every image the run's stolen sets sent to the oracle (by content): none of them may enter the pool,
 * whichever copycat asks, so the pool's held-out slice is the same for all three.
 */
export function queriedHashes(run: Run): Set<string> {
  const out = new Set<string>();
  for (const name of ['NPD-SL', 'PD-SL'] as const) {
    const v = stolenVariant(run, name);
    if (isFinished(v)) for (const h of loadStolenLabels(stolenFile(v.dir, name)).hashes) out.add(h);
  }
  return out;
}

/** The finished copycat of the run's config for `set`, or undefined when that variant has not finished. */
export function readCopycatResult(run: Run, set: CopycatSetName): CopycatResult | undefined {
  const v = copycatVariant(run, set);
  return fs.existsSync(v.result) ? readJson<CopycatResult>(v.result, `copycat ${set} result`) : undefined;
}
