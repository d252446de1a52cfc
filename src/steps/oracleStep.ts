import * as tf from '@tensorflow/tfjs';
import { assertTrainingBackend, backendReport, formatBackendReport } from '../platform/backend';
import { evaluateModel, Evaluation } from '../evaluate';
import { formatSeedReport, Scores } from '../metrics';
import { createModel } from '../models';
import { loadModel, saveModel } from '../io';
import { readJson, Run, writeJson } from '../run';
import { EpochRecord, train } from '../train';
import { cifarForRun, curveTestSet, StepHooks, stepLog } from './inputs';
import { trainingProgress } from '../display/trainingProgress';
import { trainingSummaries } from './trainingSummaries';
import { beginVariant, oracleVariant } from './variants';

/** What the oracle step leaves in its variant folder (oracle/<key>/result.json). */
export interface OracleResult extends Scores {
  architecture: string;
  trainImages: number;
  testImages: number;
  /** Oracle's predicted class for each evaluated test image (for agreement with copycats). */
  testPredictions: number[];
  history: EpochRecord[];
  trainImagesPerSecond: number;
  /** The variant's key (absent in results written before step keys). */
  key?: string;
}

/**
 * Trains the victim on CIFAR-10 (true labels), saves it to oracle/<key>/model and scores it on the test
 * set. The key is the hash of its settings (src/steps/variants.ts): a finished variant is reused, a
 * killed one resumes from its own checkpoint, `force` starts it afresh.
 */
export async function trainOracle(run: Run, hooks: StepHooks = {}): Promise<OracleResult> {
  const log = stepLog(hooks);
  const v = oracleVariant(run, undefined, hooks.force);
  if (beginVariant(v, { label: 'oracle', force: hooks.force, log }) === 'reuse') return readJson<OracleResult>(v.result, 'oracle result');
  assertTrainingBackend('oracle training');
  const t0 = Date.now();
  const { train: trainSet, test } = await cifarForRun(run);
  const cfg = run.config.oracle;
  const model = createModel(cfg.architecture, { seed: run.config.seed });
  const summaries = trainingSummaries(v, hooks, log);
  try {
    log(`Oracle: ${cfg.architecture} on ${trainSet.n} CIFAR-10 training images; ${formatBackendReport()}`);
    const bar = trainingProgress('oracle training');
    const result = await train(model, trainSet, { seed: run.config.seed, ...cfg.train }, {
      checkpointDir: v.checkpoints,
      // Test accuracy per epoch is recorded for the learning curves only: nothing is selected or
      // stopped on it, so the final test numbers stay an unbiased estimate.
      val: curveTestSet(run, test),
      onBatch: hooks.onBatch ?? bar.onBatch,
      onEpoch: summaries.onEpoch,
      signal: hooks.signal,
      log,
    });
    bar.finish();
    await saveModel(model, v.model);
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
      key: v.key,
    };
    writeJson(v.result, out);
    return out;
  } finally {
    summaries.close();
    model.dispose();
  }
}

/** The finished oracle of the run's config (an error says which notebook makes it). */
export function readOracleResult(run: Run): OracleResult {
  const v = oracleVariant(run);
  return readJson<OracleResult>(v.result, `oracle result of key ${v.key} (run notebook 01 / trainOracle with these settings first)`);
}

/** The oracle result as an Evaluation (for agreement computations). */
export function oracleEvaluation(r: OracleResult): Evaluation {
  return { metrics: r.metrics, predictions: Uint8Array.from(r.testPredictions), seconds: 0 };
}

/** Folder of the saved oracle model of the run's config (the experimenter's view). */
export const oracleModelDir = (run: Run): string => oracleVariant(run).model;

/** The saved oracle model of a run (the experimenter's view; the attacker only sees an Oracle). */
export async function loadOracleModel(run: Run): Promise<tf.LayersModel> {
  return loadModel(oracleModelDir(run));
}
