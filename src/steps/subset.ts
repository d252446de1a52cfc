import seedrandom from 'seedrandom';
import { ImageSet } from '../types';

/**
 * A seeded random subset of `n` images (all of them, in order, when n is null or >= set.n). Labels,
 * soft targets and ids follow their images.
 */
export function subsetImages(set: ImageSet, n: number | null, seed: number): ImageSet {
  if (n == null || n >= set.n) return set;
  if (!Number.isInteger(n) || n < 1) throw new Error(`subsetImages: n must be a positive integer or null, got ${n}`);
  const rng = seedrandom(`subset/${seed}`);
  const idx = Array.from({ length: set.n }, (_, i) => i);
  for (let i = set.n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  const chosen = idx.slice(0, n).sort((a, b) => a - b);
  return takeImages(set, chosen);
}

/** The images at `indices`, in that order. */
export function takeImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const px = set.height * set.width * 3;
  const images = new Uint8Array(indices.length * px);
  const labels = set.labels ? new Uint8Array(indices.length) : undefined;
  const k = set.soft ? set.soft.length / set.n : 0;
  const soft = set.soft ? new Float32Array(indices.length * k) : undefined;
  const ids = set.ids ? new Array<string>(indices.length) : undefined;
  for (let i = 0; i < indices.length; i++) {
    const s = indices[i];
    images.set(set.images.subarray(s * px, (s + 1) * px), i * px);
    if (labels) labels[i] = set.labels![s];
    if (soft) soft.set(set.soft!.subarray(s * k, (s + 1) * k), i * k);
    if (ids) ids[i] = set.ids![s];
  }
  return { images, n: indices.length, height: set.height, width: set.width, labels, soft, ids };
}
