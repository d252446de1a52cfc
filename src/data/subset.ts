import { splitHeldOut } from './split';
import { ImageSet } from '../types';

/**
 * A seeded random subset of `n` images in their original order (the whole set when n is null or >= set.n).
 * Labels, soft targets and ids follow their images.
 */
export function subsetImages(set: ImageSet, n: number | null, seed: number): ImageSet {
  if (n == null || n >= set.n) return set;
  if (!Number.isInteger(n) || n < 1) throw new Error(`subsetImages: n must be a positive integer or null, got ${n}`);
  return splitHeldOut(set, n, seed).heldOut;
}
