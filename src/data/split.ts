import seedrandom from 'seedrandom';
import { ImageSet } from '../types';

/** The images at `indices` (any order) as a new set, with their labels, soft targets and ids. */
export function pickImages(set: ImageSet, indices: ArrayLike<number>): ImageSet {
  const px = set.height * set.width * 3;
  const n = indices.length;
  const images = new Uint8Array(n * px);
  const labels = set.labels ? new Uint8Array(n) : undefined;
  const k = set.soft ? set.soft.length / set.n : 0;
  const soft = set.soft ? new Float32Array(n * k) : undefined;
  const ids = set.ids ? new Array<string>(n) : undefined;
  for (let j = 0; j < n; j++) {
    const i = indices[j];
    if (!Number.isInteger(i) || i < 0 || i >= set.n) throw new Error(`pickImages: index ${i} outside 0..${set.n - 1}`);
    images.set(set.images.subarray(i * px, (i + 1) * px), j * px);
    if (labels) labels[j] = (set.labels as Uint8Array)[i];
    if (soft) soft.set((set.soft as Float32Array).subarray(i * k, (i + 1) * k), j * k);
    if (ids) ids[j] = (set.ids as string[])[i];
  }
  return { images, n, height: set.height, width: set.width, labels, soft, ids };
}

/**
 * Splits off `nHeld` images chosen by `seed` (e.g. CIFAR-10 train 45k/5k: a held-out problem-domain
 * set the oracle never trained on). Both parts keep the original order; together they are the set.
 */
export function splitHeldOut(set: ImageSet, nHeld: number, seed: number): { train: ImageSet; heldOut: ImageSet } {
  if (!Number.isInteger(nHeld) || nHeld < 0 || nHeld > set.n) throw new Error(`splitHeldOut: nHeld must be an integer 0..${set.n}, got ${nHeld}`);
  const rng = seedrandom(`held-out/${seed}`);
  const order = Array.from({ length: set.n }, (_, i) => i);
  for (let i = set.n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const held = order.slice(0, nHeld).sort((a, b) => a - b);
  const isHeld = new Uint8Array(set.n);
  for (const i of held) isHeld[i] = 1;
  const rest: number[] = [];
  for (let i = 0; i < set.n; i++) if (!isHeld[i]) rest.push(i);
  return { train: pickImages(set, rest), heldOut: pickImages(set, held) };
}
