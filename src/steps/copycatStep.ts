import * as fs from 'fs';
import * as path from 'path';
import { assertTrainingBackend, backendReport } from '../backend';
import { compareWithOracle, evaluateModel } from '../evaluate';
import { saveModel } from '../io';
import { formatSeedReport, Metrics } from '../metrics';
import { createModel } from '../models';
import { readJson, Run, writeJson } from '../run';
import { concatImageSets, loadStolenLabels, stolenImageSet } from '../stolenLabels';
import { EpochRecord, train, TrainConfig, TrainOptions } from '../train';
import { ImageSet } from '../types';
import type { CopycatSetName } from '../config';
import { cifarForRun, curveTestSet, OracleResult, oracleEvaluation, StepHooks } from './oracleStep';
import { npdForRun, pdForRun } from './stealStep';
import { trainingProgress } from './trainingProgress';

export interface CopycatResult {
  set: CopycatSetName;
  architecture: string;
  trainImages: number;
  queries: number;
  metrics: Metrics;
  agreement: number;
  performanceOverTarget: number;
  testPredictions: number[];
  history: EpochRecord[];
  wallSeconds: number;
  trainImagesPerSecond: number;
  backend: string;
}

export const copycatDirName = (set: CopycatSetName) => set.replace('+', '_');

/** The fake dataset of one copycat: images with the oracle's answers only, never ground truth. */
export async function stolenSetForRun(run: Run, set: CopycatSetName, log?: (s: string) => void): Promise<{ data: ImageSet; queries: number }> {
  const part = async (name: 'NPD-SL' | 'PD-SL') => {
    const stolen = loadStolenLabels(run.path('stolen', `${name}.json`));
    const images = name === 'NPD-SL' ? await npdForRun(run, log) : await pdForRun(run);
    return { data: stolenImageSet(images, stolen), queries: stolen.queries.distinct };
  };
  if (set === 'NPD+PD-SL') {
    const [a, b] = [await part('NPD-SL'), await part('PD-SL')];
    return { data: concatImageSets(a.data, b.data), queries: a.queries + b.queries };
  }
  return part(set);
}

/** What training and scoring one copycat gives (shared by the copycat step and the experiments). */
export interface CopycatFit {
  metrics: Metrics;
  agreement: number;
  performanceOverTarget: number;
  testPredictions: number[];
  history: EpochRecord[];
  trainImagesPerSecond: number;
}

/**
 * Trains a fresh copycat of the run's copycat architecture on `data` (images + stolen answers only),
 * checkpointing under `dir`, saves it to `dir`/model and scores it on the test set against the oracle.
 */
export async function fitCopycat(
  run: Run,
  data: ImageSet,
  dir: string,
  opts: { label: string; train?: Partial<TrainConfig>; hooks?: StepHooks; teacher?: TrainOptions['teacher']; seed?: number },
): Promise<CopycatFit> {
  const hooks = opts.hooks ?? {};
  const log = hooks.log ?? ((s: string) => console.log(s));
  const oracle = readJson<OracleResult>(run.path('oracle', 'result.json'), 'oracle result');
  const { test } = await cifarForRun(run);
  const cfg = run.config.copycat;
  // The seed draws the initial weights, the batch order and the augmentation; the run's seed by default.
  const seed = opts.seed ?? run.config.seed;
  const model = createModel(cfg.architecture, { seed: seed + 100 });
  try {
    log(`${opts.label}: ${cfg.architecture} on ${data.n} images with stolen answers`);
    const bar = trainingProgress(opts.label);
    const result = await train(model, data, { seed, ...cfg.train, ...opts.train }, {
      checkpointDir: path.join(dir, 'checkpoints'),
      // Test accuracy per epoch, for the learning curves only (nothing is selected on it).
      val: curveTestSet(run, test),
      onBatch: hooks.onBatch ?? bar.onBatch,
      onEpoch: hooks.onEpoch,
      signal: hooks.signal,
      log,
      teacher: opts.teacher,
    });
    bar.finish();
    await saveModel(model, path.join(dir, 'model'));
    const ev = await evaluateModel(model, test);
    const cmp = compareWithOracle(ev, oracleEvaluation(oracle));
    log(`${formatSeedReport(ev.metrics)}\nAgreement with the oracle: ${(100 * cmp.agreement).toFixed(2)}%  Performance over target: ${(100 * cmp.performanceOverTarget).toFixed(2)}%`);
    return {
      metrics: ev.metrics, agreement: cmp.agreement, performanceOverTarget: cmp.performanceOverTarget,
      testPredictions: Array.from(ev.predictions), history: result.history, trainImagesPerSecond: result.imagesPerSecond,
    };
  } finally {
    model.dispose();
  }
}

/** Trains one copycat on its stolen set, saves it under copycats/<set>/ and scores it against the oracle. */
export async function trainCopycat(run: Run, set: CopycatSetName, hooks: StepHooks = {}): Promise<CopycatResult> {
  const log = hooks.log ?? ((s: string) => console.log(s));
  const dir = copycatDirName(set);
  const resultFile = run.path('copycats', dir, 'result.json');
  if (!hooks.force && fs.existsSync(resultFile)) {
    log(`Copycat ${set} already trained in ${run.path('copycats', dir)} (force: true to retrain)`);
    return readJson<CopycatResult>(resultFile, `copycat ${set} result`);
  }
  assertTrainingBackend(`copycat training (${set})`);
  const t0 = Date.now();
  const { data, queries } = await stolenSetForRun(run, set, log);
  const fit = await fitCopycat(run, data, run.path('copycats', dir), { label: `copycat ${set}`, hooks });
  const out: CopycatResult = {
    set, architecture: run.config.copycat.architecture, trainImages: data.n, queries, ...fit,
    wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label,
  };
  writeJson(resultFile, out);
  return out;
}
