import * as tf from '@tensorflow/tfjs';
import { agreement, computeMetrics, Metrics, performanceOverTarget } from './metrics';
import { argmaxRows, predictProbabilities } from './preprocess';
import { CIFAR10_CLASSES, ImageSet } from './types';

export interface Evaluation {
  metrics: Metrics;
  /** Predicted class per test image, kept so agreement between models needs no second pass. */
  predictions: Uint8Array;
  seconds: number;
}

/** Predicts every image of a labelled set and scores it (accuracy, micro/macro F1, per class, confusion). */
export async function evaluateModel(model: tf.LayersModel, test: ImageSet, batchSize = 256): Promise<Evaluation> {
  if (!test.labels) throw new Error('evaluateModel: the test set has no labels');
  const t0 = Date.now();
  const numClasses = (model.outputs[0].shape[1] as number) ?? 10;
  const probs = await predictProbabilities(model, test, batchSize);
  return scoreProbabilities(probs, numClasses, test, t0);
}

/** Scores row-major class probabilities (n * numClasses) against `test.labels`; `t0` is when predicting began. */
export function scoreProbabilities(probs: Float32Array, numClasses: number, test: ImageSet, t0: number): Evaluation {
  if (!test.labels) throw new Error('scoreProbabilities: the test set has no labels');
  const predictions = argmaxRows(probs, numClasses);
  const names = numClasses === CIFAR10_CLASSES.length ? [...CIFAR10_CLASSES] : undefined;
  const metrics = computeMetrics(test.labels, predictions, numClasses, names);
  return { metrics, predictions, seconds: (Date.now() - t0) / 1000 };
}

/** How a copycat compares with its oracle on the same test images. */
export function compareWithOracle(copycat: Evaluation, oracle: Evaluation): { agreement: number; performanceOverTarget: number } {
  return {
    agreement: agreement(copycat.predictions, oracle.predictions),
    performanceOverTarget: performanceOverTarget(copycat.metrics.macroAverage, oracle.metrics.macroAverage),
  };
}
