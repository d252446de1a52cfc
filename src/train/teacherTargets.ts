import * as tf from '@tensorflow/tfjs';

export interface Teacher {
  /** Probabilities for a normalised NHWC batch; must not train. */
  predict: (x: tf.Tensor4D) => tf.Tensor2D;
  /** Share of the teacher's answer in each target, in [0, 1]. */
  weight: number;
  /**
   * Ask the teacher only about the images the augmentation altered (moved, mirrored, cut out); the others
   * keep their stored targets. Those carry the oracle's own answer for exactly that image, which an earlier
   * copy can only approximate, and with augmentation on half the images this halves the teachers' cost.
   */
  onlyAltered?: boolean;
}

/**
 * A batch's targets with the teacher's answer mixed in: weight * teacher(x) + (1 - weight) * stored, on
 * every row, or with `onlyAltered` on the rows whose `altered` flag is 1 (the others exactly `stored`).
 * Returns a new tensor; `stored` and `x` stay the caller's.
 */
export function teacherTargets(teacher: Teacher, x: tf.Tensor4D, stored: tf.Tensor2D, altered?: Uint8Array): tf.Tensor2D {
  const w = teacher.weight;
  if (!teacher.onlyAltered) {
    return tf.tidy(() => tf.add(tf.mul(teacher.predict(x), w), tf.mul(stored, 1 - w)) as tf.Tensor2D);
  }
  if (!altered) throw new Error('teacherTargets: onlyAltered needs the batch\'s altered flags');
  const rows: number[] = [];
  for (let i = 0; i < stored.shape[0]; i++) if (altered[i]) rows.push(i);
  if (!rows.length) return tf.clone(stored);
  return tf.tidy(() => {
    const idx = tf.tensor1d(rows, 'int32');
    const s = tf.gather(stored, idx);
    const delta = tf.mul(tf.sub(teacher.predict(tf.gather(x, idx) as tf.Tensor4D), s), w);
    return tf.add(stored, tf.scatterND(tf.reshape(idx, [-1, 1]), delta, stored.shape)) as tf.Tensor2D;
  });
}
