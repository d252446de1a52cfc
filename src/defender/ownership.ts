import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { pickImages } from '../data/split';
import type { Oracle } from '../oracle/types';
import { argmaxRows, CIFAR10_MEAN, CIFAR10_STD, predictProbabilities } from '../preprocess';
import { ImageSet } from '../types';

/**
 * "Is this model a copy of mine?" with labels only (issue 53). The owner makes a fingerprint from its
 * own model: adversarial examples of the oracle (projected gradient descent, Madry et al. 2018, within
 * an L-infinity ball of `epsilon` around images of its domain) that the oracle answers differently from
 * the clean image. A copy learnt the oracle's decision boundary from its answers and tends to follow it
 * there too; a model trained independently on the same task mostly keeps the clean image's class. The
 * suspect's score is the share of fingerprint images on which it gives the oracle's (adversarial)
 * label, asked through any Oracle (a local model or a black box over HTTP): one query per image.
 */

export interface Fingerprint {
  images: ImageSet;
  /** The oracle's answer on each fingerprint image (what a copy is expected to repeat). */
  oracleLabels: Uint8Array;
  /** The oracle's answer on the clean image it came from. */
  cleanLabels: Uint8Array;
  epsilon: number;
  steps: number;
}

export interface FingerprintOptions {
  /** Fingerprint images wanted. */
  n: number;
  /** L-infinity radius in pixel levels of 255 (default 8). */
  epsilon?: number;
  /** PGD steps (default 10) of size 2.5 * epsilon / steps. */
  steps?: number;
  batchSize?: number;
}

/** Images in [0, 1] -> the normalised input the kit's models take (as batchTensor does). */
function normalise(x01: tf.Tensor4D): tf.Tensor4D {
  return tf.div(tf.sub(x01, CIFAR10_MEAN), CIFAR10_STD) as tf.Tensor4D;
}

/**
 * Projected sign-gradient steps (PGD) from `pixels` within the L-infinity ball of `eps` (on the 0..1 scale),
 * step 2.5 * eps / steps, ascending `lossOf` (direction 1) or descending it (-1); returns the uint8 rounding.
 */
async function pgdSteps(pixels: Uint8Array, n: number, h: number, w: number, eps: number, steps: number, direction: 1 | -1, lossOf: (x01: tf.Tensor4D) => tf.Scalar): Promise<Uint8Array> {
  const step = (2.5 * eps) / steps;
  const x0 = tf.tidy(() => tf.div(tf.tensor4d(Float32Array.from(pixels), [n, h, w, 3]), 255) as tf.Tensor4D);
  const grad = tf.grad((xi: tf.Tensor) => lossOf(xi as tf.Tensor4D));
  let x = x0.clone();
  try {
    for (let s = 0; s < steps; s++) {
      const next = tf.tidy(() => {
        const moved = direction === 1 ? tf.add(x, tf.mul(tf.sign(grad(x)), step)) : tf.sub(x, tf.mul(tf.sign(grad(x)), step));
        return tf.clipByValue(tf.minimum(tf.maximum(moved, tf.sub(x0, eps)), tf.add(x0, eps)), 0, 1) as tf.Tensor4D;
      });
      x.dispose();
      x = next;
    }
    const out = tf.tidy(() => tf.round(tf.mul(x, 255)));
    const data = await out.data();
    out.dispose();
    return Uint8Array.from(data);
  } finally {
    [x0, x].forEach((t) => t.dispose());
  }
}

/** Untargeted PGD on one batch: away from the oracle's clean answers; returns uint8 pixels. */
async function pgdBatch(model: tf.LayersModel, pixels: Uint8Array, n: number, h: number, w: number, labels: Uint8Array, eps: number, steps: number): Promise<Uint8Array> {
  const k = model.outputs[0].shape[1] as number;
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), k).toFloat());
  try {
    return await pgdSteps(pixels, n, h, w, eps, steps, 1, (xi) => tf.losses.softmaxCrossEntropy(y, tf.log(tf.clipByValue(model.apply(normalise(xi), { training: false }) as tf.Tensor2D, 1e-7, 1))) as tf.Scalar);
  } finally {
    y.dispose();
  }
}

/**
 * Walks `base` in order, attacks each batch, and keeps the adversarial images (rounded to uint8, as a
 * suspect receives them) that the oracle answers differently from their clean image, until `n`.
 */
export async function makeFingerprint(oracle: tf.LayersModel, base: ImageSet, o: FingerprintOptions): Promise<Fingerprint> {
  const eps = (o.epsilon ?? 8) / 255;
  const steps = o.steps ?? 10;
  const bs = o.batchSize ?? 128;
  const { height: h, width: w } = base;
  const px = h * w * 3;
  const k = oracle.outputs[0].shape[1] as number;
  const kept: { px: Uint8Array; adv: number; clean: number }[] = [];
  for (let start = 0; start < base.n && kept.length < o.n; start += bs) {
    const count = Math.min(bs, base.n - start);
    const clean = pickImages(base, Array.from({ length: count }, (_, i) => start + i));
    const cleanLabels = argmaxRows(await predictProbabilities(oracle, clean), k);
    const adv = await pgdBatch(oracle, clean.images, count, h, w, cleanLabels, eps, steps);
    const advLabels = argmaxRows(await predictProbabilities(oracle, { images: adv, n: count, height: h, width: w }), k);
    for (let i = 0; i < count && kept.length < o.n; i++) {
      if (advLabels[i] !== cleanLabels[i]) kept.push({ px: adv.subarray(i * px, (i + 1) * px), adv: advLabels[i], clean: cleanLabels[i] });
    }
  }
  if (kept.length < o.n) throw new Error(`makeFingerprint: only ${kept.length} of ${o.n} images changed the oracle's answer within epsilon ${o.epsilon ?? 8}/255; give more base images or a larger epsilon`);
  return fingerprintOf(kept.map((e) => ({ px: e.px, label: e.adv, clean: e.clean })), h, w, o.epsilon ?? 8, steps);
}

/** The kept images, each with the oracle's answer and its clean image's, as one Fingerprint. */
function fingerprintOf(kept: { px: Uint8Array; label: number; clean: number }[], h: number, w: number, epsilon: number, steps: number): Fingerprint {
  const px = h * w * 3;
  const images = new Uint8Array(kept.length * px);
  kept.forEach((e, i) => images.set(e.px, i * px));
  return {
    images: { images, n: kept.length, height: h, width: w },
    oracleLabels: Uint8Array.from(kept, (e) => e.label), cleanLabels: Uint8Array.from(kept, (e) => e.clean),
    epsilon, steps,
  };
}

export interface ConferrableOptions extends FingerprintOptions {
  /** The owner's own copies of its oracle (made as an attacker would), which a stolen copy should resemble. */
  surrogates: tf.LayersModel[];
  /** Models the owner trained independently on the task, which an innocent suspect should resemble. */
  references: tf.LayersModel[];
  /** Seeds the target classes. */
  seed?: number;
  /** Fewest images to accept when the base images run out before `n` (default `n`: an error). */
  minimum?: number;
}

/** Mean cross-entropy of `model` towards the one-hot targets `y` on normalised inputs. */
function crossEntropyTo(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  const p = model.apply(x, { training: false }) as tf.Tensor2D;
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(p, 1e-7, 1))), 1))) as tf.Scalar;
}

/** Mean of log(1 - p_target): large when the model does NOT give the target class. */
function logNotTarget(model: tf.LayersModel, x: tf.Tensor4D, y: tf.Tensor2D): tf.Scalar {
  const p = model.apply(x, { training: false }) as tf.Tensor2D;
  return tf.mean(tf.log(tf.clipByValue(tf.sub(1, tf.sum(tf.mul(y, p), 1)), 1e-7, 1))) as tf.Scalar;
}

/**
 * Conferrable adversarial examples (Lukas, Zhang and Kerschbaum, "Deep Neural Network Fingerprinting by
 * Conferrable Adversarial Examples", ICLR 2021): targeted examples that the oracle and the owner's own
 * surrogate copies give the target class and that the owner's independently trained reference models do
 * not. Plain adversarial examples transfer to any model of the task (measured here: a copy and an independent
 * model follow the oracle on about the same share), so they cannot tell the two apart; conferrable ones are
 * chosen to transfer to copies only. PGD (L-infinity `epsilon`, `steps`) minimises the cross-entropy to a
 * seeded random target for the oracle and the surrogates and maximises log(1 - p_target) for the references;
 * an image is kept only when all of that holds on its uint8 rounding. Like Lukas et al., this needs the
 * owner to train a few models itself; the suspect is then asked one label per fingerprint image.
 */
export async function conferrableFingerprint(oracle: tf.LayersModel, base: ImageSet, o: ConferrableOptions): Promise<Fingerprint> {
  if (!o.surrogates.length || !o.references.length) throw new Error('conferrableFingerprint: needs at least one surrogate copy and one reference model');
  const eps = (o.epsilon ?? 8) / 255;
  const steps = o.steps ?? 20;
  const bs = o.batchSize ?? 128;
  const { height: h, width: w } = base;
  const px = h * w * 3;
  const k = oracle.outputs[0].shape[1] as number;
  const rng = seedrandom(`conferrable/${o.seed ?? 53}`);
  const labelsOf = async (m: tf.LayersModel, set: ImageSet) => argmaxRows(await predictProbabilities(m, set), k);
  const kept: { px: Uint8Array; label: number; clean: number }[] = [];
  for (let start = 0; start < base.n && kept.length < o.n; start += bs) {
    const count = Math.min(bs, base.n - start);
    const clean = pickImages(base, Array.from({ length: count }, (_, i) => start + i));
    const cleanLabels = await labelsOf(oracle, clean);
    // A random class other than the clean answer: the less natural the target, the less an independent model follows.
    const targets = Uint8Array.from(cleanLabels, (c) => (c + 1 + Math.floor(rng() * (k - 1))) % k);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(targets), 'int32'), k).toFloat() as tf.Tensor2D);
    // Descend: towards the target for oracle and surrogates, away from it for the references.
    const objective = (xi: tf.Tensor4D) => {
      const xn = normalise(xi);
      let loss = crossEntropyTo(oracle, xn, y);
      for (const s of o.surrogates) loss = tf.add(loss, tf.div(crossEntropyTo(s, xn, y), o.surrogates.length)) as tf.Scalar;
      for (const r of o.references) loss = tf.sub(loss, tf.div(logNotTarget(r, xn, y), o.references.length)) as tf.Scalar;
      return loss;
    };
    try {
      const adv: ImageSet = { images: await pgdSteps(clean.images, count, h, w, eps, steps, -1, objective), n: count, height: h, width: w };
      const ok = new Array<boolean>(count).fill(true);
      const mark = (labels: Uint8Array, wantTarget: boolean) => labels.forEach((l, i) => { if ((l === targets[i]) !== wantTarget) ok[i] = false; });
      mark(await labelsOf(oracle, adv), true);
      for (const s of o.surrogates) mark(await labelsOf(s, adv), true);
      for (const r of o.references) mark(await labelsOf(r, adv), false);
      for (let i = 0; i < count && kept.length < o.n; i++) {
        if (ok[i]) kept.push({ px: adv.images.slice(i * px, (i + 1) * px), label: targets[i], clean: cleanLabels[i] });
      }
    } finally {
      y.dispose();
    }
  }
  if (kept.length < (o.minimum ?? o.n)) throw new Error(`conferrableFingerprint: only ${kept.length} of ${o.n} images became conferrable within epsilon ${o.epsilon ?? 8}/255 (oracle and surrogates on the target, no reference); give more base images or a larger epsilon`);
  return fingerprintOf(kept, h, w, o.epsilon ?? 8, steps);
}

/**
 * The other fingerprint: natural images from outside the task (e.g. Tiny ImageNet images the owner holds)
 * with the oracle's answers. Off its domain a model's answers are its own idiosyncrasy; a copycat was
 * trained on exactly such answers and repeats them, an independent model answers its own way.
 * `cleanLabels` is the oracle's answer too (there is no clean/adversarial pair).
 */
export async function naturalFingerprint(oracle: tf.LayersModel, images: ImageSet): Promise<Fingerprint> {
  const labels = argmaxRows(await predictProbabilities(oracle, images), oracle.outputs[0].shape[1] as number);
  return { images, oracleLabels: labels, cleanLabels: labels, epsilon: 0, steps: 0 };
}

export interface OwnershipScore {
  /** Share of the asked fingerprint images on which the suspect answers as the oracle did. */
  score: number;
  /** Share on which it answers the clean image's class (what an independent model tends to do). */
  cleanShare: number;
  /** Label-only queries sent to the suspect. */
  queries: number;
}

/** Asks the suspect about the first `queries` fingerprint images (labels only) and scores it. */
export async function scoreSuspect(suspect: Oracle | tf.LayersModel, fp: Fingerprint, queries = fp.images.n): Promise<OwnershipScore> {
  const n = Math.min(queries, fp.images.n);
  const asked = pickImages(fp.images, Array.from({ length: n }, (_, i) => i));
  let labels: ArrayLike<number>;
  if ('query' in suspect) labels = (await suspect.query(asked)).map((a) => a.label);
  else labels = argmaxRows(await predictProbabilities(suspect, asked), suspect.outputs[0].shape[1] as number);
  let same = 0;
  let clean = 0;
  for (let i = 0; i < n; i++) {
    if (labels[i] === fp.oracleLabels[i]) same++;
    else if (labels[i] === fp.cleanLabels[i]) clean++;
  }
  return { score: same / n, cleanShare: clean / n, queries: n };
}

/** Area under the ROC curve of scores (positives should score higher); ties count half. */
export function rocAuc(positives: number[], negatives: number[]): number {
  if (!positives.length || !negatives.length) throw new Error('rocAuc: needs at least one positive and one negative score');
  let wins = 0;
  for (const p of positives) for (const q of negatives) wins += p > q ? 1 : p === q ? 0.5 : 0;
  return wins / (positives.length * negatives.length);
}
