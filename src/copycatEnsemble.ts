import * as tf from '@tensorflow/tfjs';
import { Evaluation, scoreProbabilities } from './evaluate';
import { predictProbabilities } from './preprocess';
import { shiftImages } from './train/augment';
import { ImageSet } from './types';

/**
 * Several copycats trained on the same stolen labels, answering together: the mean of their class
 * probabilities (optionally also on each image's mirror and shifted copies, "test-time augmentation"). It costs no
 * further query, since every member learnt from the same answers, only more inference for the attacker; the
 * architecture of a copycat is the attacker's free choice, and an average of nets is one.
 */
export interface EnsembleOptions {
  /** Also average each model's prediction on the horizontally mirrored image. */
  flip?: boolean;
  /**
   * Also average over the image moved by this many pixels up, down, left and right (black border, as the
   * training crop makes it), and over those views' mirrors when `flip` is on. 0 or absent = off.
   */
  shift?: number;
  batchSize?: number;
  /**
   * Called with each model's probabilities on the plain images (its first view) as soon as they are
   * known, so a caller can score each member alone without predicting the test set a second time.
   */
  onMember?: (index: number, probs: Float32Array) => void;
  /**
   * Probabilities of a (model, view) pair computed before, and where new ones go: scoring the same
   * copies again (another subset of them, or flip added) then predicts only what is new. `get` must give
   * back exactly what `put` was given for that model and view on these images, or undefined.
   */
  viewCache?: {
    get(index: number, view: TestTimeView): Float32Array | undefined;
    put(index: number, view: TestTimeView, probs: Float32Array): void;
  };
}

/** One test-time view: the image moved by (dy, dx) pixels, then mirrored when `flip`. */
export interface TestTimeView {
  dy: number;
  dx: number;
  flip: boolean;
}

/** A horizontally mirrored copy of every image of `set` (uint8, same layout). */
export function mirrorImages<T extends Pick<ImageSet, 'images' | 'height' | 'width' | 'n'>>(set: T): T {
  return { ...set, images: shiftImages(set, 0, 0, true) };
}

/** The (dy, dx, mirrored) views that `opts` averages over; the first is the image itself. */
export function testTimeViews(opts: Pick<EnsembleOptions, 'flip' | 'shift'>): TestTimeView[] {
  const s = opts.shift ?? 0;
  if (!(Number.isInteger(s) && s >= 0)) throw new Error(`ensemble shift must be a whole number of pixels >= 0, got ${s}`);
  const offsets = s ? [[0, 0], [-s, 0], [s, 0], [0, -s], [0, s]] : [[0, 0]];
  const flips = opts.flip ? [false, true] : [false];
  return flips.flatMap((flip) => offsets.map(([dy, dx]) => ({ dy, dx, flip })));
}

/** Mean class probabilities of `models` over `set` (n * numClasses, row-major). */
export async function ensembleProbabilities(
  models: tf.LayersModel[],
  set: Pick<ImageSet, 'images' | 'height' | 'width' | 'n'>,
  opts: EnsembleOptions = {},
): Promise<Float32Array> {
  if (models.length === 0) throw new Error('ensembleProbabilities: no models given');
  const views = testTimeViews(opts);
  let sum: Float32Array | undefined;
  for (const [index, model] of models.entries()) {
    for (const [vi, v] of views.entries()) {
      let p = opts.viewCache?.get(index, v);
      if (!p) {
        // Built per model rather than kept: ten views of the 10k test set would hold 300 MB for nothing.
        const view = v.dy || v.dx || v.flip ? { ...set, images: shiftImages(set, v.dy, v.dx, v.flip) } : set;
        p = await predictProbabilities(model, view, opts.batchSize);
        opts.viewCache?.put(index, v, p);
      }
      // A copy, not p itself: the sum is added to in place and p goes to onMember below.
      if (!sum) sum = Float32Array.from(p);
      else {
        if (p.length !== sum.length) throw new Error(`ensembleProbabilities: models disagree on the number of classes (${p.length / set.n} vs ${sum.length / set.n})`);
        for (let i = 0; i < p.length; i++) sum[i] += p[i];
      }
      if (vi === 0) opts.onMember?.(index, p);
    }
  }
  const k = models.length * views.length;
  const out = sum as Float32Array;
  for (let i = 0; i < out.length; i++) out[i] /= k;
  return out;
}

/** Scores the ensemble on a labelled set, like evaluateModel scores one model. */
export async function evaluateEnsemble(models: tf.LayersModel[], test: ImageSet, opts: EnsembleOptions = {}): Promise<Evaluation> {
  if (!test.labels) throw new Error('evaluateEnsemble: the test set has no labels');
  const t0 = Date.now();
  const probs = await ensembleProbabilities(models, test, opts);
  return scoreProbabilities(probs, probs.length / test.n, test, t0);
}
