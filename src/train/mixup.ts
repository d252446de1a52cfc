import * as tf from '@tensorflow/tfjs';
import { randomBeta } from 'd3-random';
import { shuffledIndices } from './sampler';

/**
 * mixup (Zhang et al., ICLR 2018): train on convex combinations of two examples and of their targets,
 * lam * (x_i, y_i) + (1 - lam) * (x_j, y_j), with lam ~ Beta(alpha, alpha) drawn once per batch and
 * j a random permutation of the batch. For a copycat the stolen set is fixed (one query per image), so
 * the copy overfits its 80k answers without augmentation, while crops and flips of out-of-domain
 * images change the oracle's answer about a third of the time (bench:consistency). mixup regularises
 * without pretending that an altered image keeps its label: the target is mixed with the image.
 */
export interface MixupDraw {
  lambda: number;
  /** partner[i] = j: image i is mixed with image j of the same batch. */
  partner: Int32Array;
}

/** Draws lam and the partner permutation from the training stream `rng`. */
export function drawMixup(alpha: number, count: number, rng: () => number): MixupDraw {
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`mixup: alpha must be a finite number > 0, got ${alpha}`);
  const lambda = randomBeta.source(rng)(alpha, alpha)();
  return { lambda, partner: shuffledIndices(count, rng) };
}

/** lam * t + (1 - lam) * t[partner] along the batch axis; works for images and for targets. */
export function mixWithPartner<T extends tf.Tensor>(t: T, draw: MixupDraw): T {
  return tf.tidy(() => {
    const other = tf.gather(t, tf.tensor1d(draw.partner, 'int32'));
    return tf.add(tf.mul(t, draw.lambda), tf.mul(other, 1 - draw.lambda)) as T;
  });
}
