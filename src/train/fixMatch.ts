import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { batchTensor, range } from '../preprocess';
import { ImageSet } from '../types';
import { AugmentationConfig, augmentBatch } from './augment';
import { strongAugment } from './randAugment';
import { shuffledIndices } from './sampler';

/**
 * Semi-supervised copycat training with FixMatch (Sohn et al., "FixMatch: Simplifying Semi-Supervised
 * Learning with Consistency and Confidence", NeurIPS 2020), on the unqueried pool: each step also draws
 * `ratio` x batch unlabeled images; the model's answer on a weakly augmented view (crop + flip) becomes
 * a hard pseudo-label where its top probability reaches `threshold`, and the model learns to give that
 * label to a strongly augmented view of the same image (RandAugment + cutout). Answers an attacker
 * pays for stay the only labels; the pool adds what the copy can tell about images it never asked.
 *
 * The pseudo-label comes from the model in inference mode (batch-norm running statistics), outside the
 * gradient tape: TF.js has no stop-gradient, and that is the cheaper pass (no backward).
 */
export interface SemiSupervisedConfig {
  method: 'fixmatch';
  /** Unlabeled images per labeled image in a step (FixMatch's mu: 7 in the paper; 1-2 fits a CPU). */
  ratio: number;
  /**
   * Top probability a weak view's answer needs to become a pseudo-label (tau: 0.95 in the paper). With
   * label smoothing eps the model's top probability approaches 1 - eps + eps/K (0.82 at eps 0.2), so the
   * threshold must sit below that.
   */
  threshold: number;
  /** Weight of the unlabeled loss (lambda_u: 1 in the paper). */
  weight: number;
  /** RandAugment ops per strong view (2 in the paper). */
  strongOps: number;
  /** Side of the strong view's cutout square, in pixels (16 at 32 px in the paper). */
  strongCutout: number;
  /** Also draw the labeled images into the unlabeled stream, as FixMatch does. */
  includeLabeled: boolean;
}

export const DEFAULT_SEMI_SUPERVISED: SemiSupervisedConfig = {
  method: 'fixmatch', ratio: 1, threshold: 0.7, weight: 1, strongOps: 2, strongCutout: 16, includeLabeled: true,
};

/** Fills in the defaults and validates, naming the field; null stays null (off). */
export function resolveSemiSupervised(c: Partial<SemiSupervisedConfig> | null | undefined): SemiSupervisedConfig | null {
  if (c == null) return null;
  const s: SemiSupervisedConfig = { ...DEFAULT_SEMI_SUPERVISED, ...c };
  const f = 'TrainConfig.semiSupervised';
  if (s.method !== 'fixmatch') throw new Error(`${f}.method must be 'fixmatch', got '${s.method}'`);
  if (!(s.ratio > 0) || !Number.isFinite(s.ratio)) throw new Error(`${f}.ratio must be > 0 (unlabeled images per labeled image in a step), got ${s.ratio}`);
  if (!(s.threshold >= 0 && s.threshold <= 1)) throw new Error(`${f}.threshold must be in [0, 1], got ${s.threshold}`);
  if (!(s.weight >= 0) || !Number.isFinite(s.weight)) throw new Error(`${f}.weight must be a finite number >= 0, got ${s.weight}`);
  if (!Number.isInteger(s.strongOps) || s.strongOps < 0) throw new Error(`${f}.strongOps must be an integer >= 0, got ${s.strongOps}`);
  if (!Number.isInteger(s.strongCutout) || s.strongCutout < 0) throw new Error(`${f}.strongCutout must be an integer >= 0 (pixels), got ${s.strongCutout}`);
  if (typeof s.includeLabeled !== 'boolean') throw new Error(`${f}.includeLabeled must be true or false, got ${JSON.stringify(s.includeLabeled)}`);
  return s;
}

/**
 * The unlabeled images a run draws from: the pool, then (includeLabeled) the labeled set. Each epoch
 * walks a fresh seeded permutation, so a resumed run sees the same unlabeled batches.
 */
export class UnlabeledStream {
  readonly size: number;
  private order: Int32Array = new Int32Array(0);

  constructor(private pool: ImageSet, private labeled: ImageSet | undefined, private seed: number) {
    this.size = pool.n + (labeled?.n ?? 0);
    if (this.size === 0) throw new Error('train: semi-supervised training needs unlabeled images (TrainOptions.unlabeled is empty)');
  }

  /** Draws this epoch's order; its own stream, so the labeled batches stay what they were. */
  startEpoch(epoch: number): seedrandom.PRNG {
    const rng = seedrandom(`${this.seed}/unlabeled/${epoch}`);
    this.order = shuffledIndices(this.size, rng);
    return rng;
  }

  /** The pixels of the `count` images at step `step` of the epoch (wrapping around the order). */
  batch(step: number, count: number): Uint8Array {
    const { height: h, width: w } = this.pool;
    const px = h * w * 3;
    const out = new Uint8Array(count * px);
    for (let j = 0; j < count; j++) {
      const i = this.order[(step * count + j) % this.size];
      const src = i < this.pool.n ? this.pool : this.labeled!;
      const k = i < this.pool.n ? i : i - this.pool.n;
      out.set(src.images.subarray(k * px, (k + 1) * px), j * px);
    }
    return out;
  }
}

/** The weak and strong views of one unlabeled batch, as float tensors (the caller disposes them). */
export function unlabeledViews(
  pixels: Uint8Array, count: number, h: number, w: number, weak: AugmentationConfig, s: SemiSupervisedConfig, rng: () => number,
): { weakX: tf.Tensor4D; strongX: tf.Tensor4D } {
  const weakPx = augmentBatch({ images: pixels, height: h, width: w }, range(0, count), { crop: weak.crop, flip: weak.flip, pad: weak.pad }, rng);
  const strongPx = strongAugment(weakPx, count, h, w, { ops: s.strongOps, cutout: s.strongCutout }, rng);
  const view = (images: Uint8Array) => batchTensor({ images, height: h, width: w }, range(0, count)) as tf.Tensor4D;
  return { weakX: view(weakPx), strongX: view(strongPx) };
}

/**
 * Hard pseudo-labels (label-smoothed like the stored targets) and the [n] mask of answers confident
 * enough, from the model's inference-mode answer on the weak view. Constants for the tape.
 */
export function pseudoLabels(net: tf.LayersModel, weakX: tf.Tensor4D, fromLogits: boolean, threshold: number, labelSmoothing: number): { targets: tf.Tensor2D; mask: tf.Tensor1D } {
  return tf.tidy(() => {
    const out = net.apply(weakX, { training: false }) as tf.Tensor2D;
    const probs = fromLogits ? tf.softmax(out) : out;
    const k = probs.shape[1];
    let targets = tf.oneHot(tf.argMax(probs, -1), k).toFloat() as tf.Tensor2D;
    if (labelSmoothing > 0) targets = tf.add(tf.mul(targets, 1 - labelSmoothing), labelSmoothing / k) as tf.Tensor2D;
    const mask = tf.cast(tf.greaterEqual(tf.max(probs, -1), threshold), 'float32') as tf.Tensor1D;
    return { targets, mask };
  });
}

/** FixMatch's unlabeled loss: masked cross-entropy, averaged over all unlabeled images of the step. */
export function unlabeledLoss(targets: tf.Tensor2D, out: tf.Tensor2D, mask: tf.Tensor1D, fromLogits: boolean): tf.Scalar {
  const perImage = fromLogits
    ? tf.losses.softmaxCrossEntropy(targets, out, undefined, 0, tf.Reduction.NONE)
    : tf.neg(tf.sum(tf.mul(targets, tf.log(tf.clipByValue(out, 1e-7, 1))), -1));
  return tf.mean(tf.mul(perImage, mask)) as tf.Scalar;
}
