import * as tf from '@tensorflow/tfjs';
import { yieldToEventLoop } from './platform/eventLoop';
import { ImageSet } from './types';

/**
 * Per-channel mean/std of the CIFAR-10 training set (on the 0..1 scale). Every model in the kit sees
 * images normalised this way; the oracle does it behind its API, so an attacker never needs to know.
 */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD = [0.2470, 0.2435, 0.2616];

/**
 * Builds a normalised float32 NHWC batch from uint8 images. `indices` selects images of `set` (any
 * order); pixels are converted in JS so only the batch ever exists as a float tensor.
 */
export function batchTensor(set: Pick<ImageSet, 'images' | 'height' | 'width'>, indices: ArrayLike<number>): tf.Tensor4D {
  const { height: h, width: w } = set;
  const px = h * w;
  const out = new Float32Array(indices.length * px * 3);
  const scale = [1 / (255 * CIFAR10_STD[0]), 1 / (255 * CIFAR10_STD[1]), 1 / (255 * CIFAR10_STD[2])];
  const shift = [CIFAR10_MEAN[0] / CIFAR10_STD[0], CIFAR10_MEAN[1] / CIFAR10_STD[1], CIFAR10_MEAN[2] / CIFAR10_STD[2]];
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b] * px * 3;
    const dst = b * px * 3;
    for (let p = 0; p < px * 3; p += 3) {
      out[dst + p] = set.images[src + p] * scale[0] - shift[0];
      out[dst + p + 1] = set.images[src + p + 1] * scale[1] - shift[1];
      out[dst + p + 2] = set.images[src + p + 2] * scale[2] - shift[2];
    }
  }
  return tf.tensor4d(out, [indices.length, h, w, 3]);
}

/** Indices start..start+count-1, the common case of a contiguous batch. */
export function range(start: number, count: number): Int32Array {
  const r = new Int32Array(count);
  for (let i = 0; i < count; i++) r[i] = start + i;
  return r;
}

/**
 * Class probabilities of `model` for every image of `set`, batch by batch (n * numClasses, row-major).
 * Disposes every intermediate tensor.
 */
export async function predictProbabilities(
  model: tf.LayersModel,
  set: Pick<ImageSet, 'images' | 'height' | 'width' | 'n'>,
  batchSize = 256,
): Promise<Float32Array> {
  let out: Float32Array | undefined;
  let numClasses = 0;
  for (let start = 0; start < set.n; start += batchSize) {
    const count = Math.min(batchSize, set.n - start);
    // The whole batch in one pass: predict() otherwise cuts it into 32-image slices and concatenates them
    // (docs/backends.md, "Whole batches").
    const probs = tf.tidy(() => model.predict(batchTensor(set, range(start, count)), { batchSize: count }) as tf.Tensor2D);
    const data = (await probs.data()) as Float32Array;
    if (!out) {
      numClasses = probs.shape[1];
      out = new Float32Array(set.n * numClasses);
    }
    probs.dispose();
    out.set(data, start * numClasses);
    await yieldToEventLoop();
  }
  return out ?? new Float32Array(0);
}

/** Arg-max per row of a row-major probability matrix. */
export function argmaxRows(probs: Float32Array, numClasses: number): Uint8Array {
  const n = probs.length / numClasses;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[i * numClasses + c] > probs[i * numClasses + best]) best = c;
    labels[i] = best;
  }
  return labels;
}
