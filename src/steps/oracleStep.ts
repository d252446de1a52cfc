import * as fs from 'fs';
import * as tf from '@tensorflow/tfjs';
import { assertTrainingBackend, backendReport, formatBackendReport } from '../backend';
import { loadCifar10 } from '../data/cifar10';
import { evaluateModel, Evaluation } from '../evaluate';
import { formatSeedReport, Metrics } from '../metrics';
import { createModel } from '../models';
import { loadModel, saveModel } from '../io';
import type { ExperimentConfig } from '../config';
import { readJson, Run, writeJson } from '../run';
import { BatchProgress, EpochRecord, train } from '../train';
import { ImageSet } from '../types';
import { subsetImages } from './subset';
import { trainingProgress } from './trainingProgress';

/** What the oracle step leaves in the run directory (oracle/result.json). */
export interface OracleResult {
  architecture: string;
  trainImages: number;
  testImages: number;
  metrics: Metrics;
  /** Oracle's predicted class for each evaluated test image (for agreement with copycats). */
  testPredictions: number[];
  history: EpochRecord[];
  wallSeconds: number;
  trainImagesPerSecond: number;
  backend: string;
}

export interface StepHooks {
  onBatch?: (p: BatchProgress) => void;
  onEpoch?: (r: EpochRecord, h: EpochRecord[]) => void;
  log?: (line: string) => void;
  /** Stops training before the next batch once aborted (e.g. epochDeadline's); the checkpoint keeps the finished epochs. */
  signal?: AbortSignal;
  /** Re-train even when the run already holds a finished oracle. */
  force?: boolean;
}

/** The CIFAR-10 train subset the oracle learns from and the test subset every model is scored on. */
export async function cifarForRun(run: Run): Promise<{ train: ImageSet; test: ImageSet }> {
  const { train: fullTrain, test: fullTest } = await loadCifar10();
  const d = run.config.data;
  return {
    train: subsetImages(fullTrain, d.oracleTrainImages, run.config.seed),
    test: subsetImages(fullTest, d.testImages, run.config.seed),
  };
}

/**
 * The test images scored after each epoch for the learning curves (config data.curveTestImages): on a
 * CPU, scoring all 10,000 every epoch costs the quick profile about a minute and a half.
 */
export function curveTestSet(run: Run, test: ImageSet): ImageSet {
  return subsetImages(test, run.config.data.curveTestImages, run.config.seed + 1);
}

/** How the curves name that set: 'test', or 'test (2000-image subset)'. */
export function curveTestLabel(data: Pick<ExperimentConfig['data'], 'curveTestImages' | 'testImages'>): string {
  const { curveTestImages: n, testImages } = data;
  return n == null || (testImages != null && n >= testImages) ? 'test' : `test (${n}-image subset)`;
}

/**
 * Trains the victim on CIFAR-10 (true labels), saves it to oracle/model and scores it on the test set.
 * Resumable: epochs are checkpointed in oracle/checkpoints; a finished oracle is reused unless `force`.
 */
export async function trainOracle(run: Run, hooks: StepHooks = {}): Promise<OracleResult> {
  const log = hooks.log ?? ((s: string) => console.log(s));
  const resultFile = run.path('oracle', 'result.json');
  if (!hooks.force && fs.existsSync(resultFile) && fs.existsSync(run.path('oracle', 'model', 'model.json'))) {
    log(`Oracle already trained in ${run.path('oracle')} (force: true to retrain)`);
    return readJson<OracleResult>(resultFile, 'oracle result');
  }
  assertTrainingBackend('oracle training');
  const t0 = Date.now();
  const { train: trainSet, test } = await cifarForRun(run);
  const cfg = run.config.oracle;
  const model = createModel(cfg.architecture, { seed: run.config.seed });
  try {
    log(`Oracle: ${cfg.architecture} on ${trainSet.n} CIFAR-10 training images; ${formatBackendReport()}`);
    const bar = trainingProgress('oracle training');
    const result = await train(model, trainSet, { seed: run.config.seed, ...cfg.train }, {
      checkpointDir: run.path('oracle', 'checkpoints'),
      // Test accuracy per epoch is recorded for the learning curves only: nothing is selected or
      // stopped on it, so the final test numbers stay an unbiased estimate.
      val: curveTestSet(run, test),
      onBatch: hooks.onBatch ?? bar.onBatch,
      onEpoch: hooks.onEpoch,
      log,
    });
    bar.finish();
    await saveModel(model, run.path('oracle', 'model'));
    const ev = await evaluateModel(model, test);
    log(formatSeedReport(ev.metrics));
    const out: OracleResult = {
      architecture: cfg.architecture,
      trainImages: trainSet.n,
      testImages: test.n,
      metrics: ev.metrics,
      testPredictions: Array.from(ev.predictions),
      history: result.history,
      wallSeconds: (Date.now() - t0) / 1000,
      trainImagesPerSecond: result.imagesPerSecond,
      backend: backendReport().label,
    };
    writeJson(resultFile, out);
    return out;
  } finally {
    model.dispose();
  }
}

/** The oracle result as an Evaluation (for agreement computations). */
export function oracleEvaluation(r: OracleResult): Evaluation {
  return { metrics: r.metrics, predictions: Uint8Array.from(r.testPredictions), seconds: 0 };
}

/** The saved oracle model of a run (the experimenter's view; the attacker only sees an Oracle). */
export async function loadOracleModel(run: Run): Promise<tf.LayersModel> {
  return loadModel(run.path('oracle', 'model'));
}
