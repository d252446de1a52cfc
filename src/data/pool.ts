import { imageHashes } from '../oracle/identity';
import { ImageSet } from '../types';
import { pickImages } from './split';

/**
 * The unqueried pool: natural images the attacker holds but never sends to the oracle. Natural images
 * are free; answers are what an attacker pays for. A semi-supervised copycat learns from the pool
 * without labels, and a slice of it, kept out of every training, measures how faithful a copy is on
 * NPD images it never saw (the CIFAR-10 test set says little about that).
 *
 * Images are told apart by content (SHA-1 of the RGB bytes, the key of the query cache), so an image
 * that was paid for never enters the pool, whichever source or file name it came from.
 */

export interface PoolSummary {
  /** Pool images a copycat may train on. */
  trainImages: number;
  /** Images kept out of every training, for the unseen-NPD agreement. */
  heldOutImages: number;
  /** Of the training images: from the extra sources, and from the queried source's images not paid for. */
  fromExtraSources: number;
  fromQueriedSource: number;
  /** Candidates left out because they were paid for (their content is in the stolen set). */
  excludedAsQueried: number;
  /** Candidates left out because an image with the same content was already in the pool. */
  duplicates: number;
}

export interface PoolSplit {
  train: ImageSet;
  heldOut: ImageSet;
  summary: PoolSummary;
}

export interface PoolParts {
  /**
   * The held-out slice: images of the extra sources kept out of every training. The caller loads it as a
   * prefix-stable seeded subset, so it is the same whatever the pool's size or the query budget.
   */
  heldOut: ImageSet;
  /** Images of the extra sources (e.g. the 20k Tiny ImageNet images outside the 80k mirror). */
  extra: ImageSet[];
  /** Images of the queried NPD source, paid for or not (those paid for are dropped here). */
  queriedSource?: ImageSet;
  /** Content hashes of every image sent to the oracle for the stolen set. */
  queriedHashes: ReadonlySet<string>;
  /** At most this many training images, extra sources first (null: all). */
  images: number | null;
}

/**
 * The indices of `set` whose content is new: neither queried, nor held out, nor already taken (`seen`
 * grows). The held-out images are in their source too (a prefix of it): they are skipped, not counted.
 */
function fresh(set: ImageSet, queried: ReadonlySet<string>, seen: Set<string>, counts: { queried: number; duplicates: number }, heldOut?: ReadonlySet<string>): number[] {
  const keep: number[] = [];
  const hashes = imageHashes(set.images, set.n, set.height * set.width * 3);
  hashes.forEach((h, i) => {
    if (queried.has(h)) counts.queried++;
    else if (heldOut?.has(h)) return;
    else if (seen.has(h)) counts.duplicates++;
    else {
      seen.add(h);
      keep.push(i);
    }
  });
  return keep;
}

function concat(sets: ImageSet[], height: number, width: number): ImageSet {
  const px = height * width * 3;
  const n = sets.reduce((t, s) => t + s.n, 0);
  const images = new Uint8Array(n * px);
  const ids: string[] = [];
  let at = 0;
  for (const s of sets) {
    images.set(s.images.subarray(0, s.n * px), at * px);
    for (let i = 0; i < s.n; i++) ids.push(s.ids?.[i] ?? `#${at + i}`);
    at += s.n;
  }
  return { images, n, height, width, ids };
}

/**
 * Splits what the attacker holds into the pool's training images and its held-out slice. The held-out
 * slice comes from the extra sources, so it is the same for every query budget and every way of
 * choosing queries (they draw from the queried source): copies made under either are compared on the
 * same unseen images. Labels and soft targets are dropped: the pool has none.
 */
export function unqueriedPool(p: PoolParts): PoolSplit {
  const { height, width } = p.heldOut;
  for (const s of [...p.extra, ...(p.queriedSource ? [p.queriedSource] : [])]) {
    if (s.height !== height || s.width !== width) throw new Error(`unqueriedPool: images of ${s.height}x${s.width} beside ${height}x${width}; load every source at one size`);
  }
  if (p.images != null && (!Number.isInteger(p.images) || p.images < 0)) throw new Error(`unqueriedPool: images must be an integer >= 0 or null, got ${p.images}`);
  const counts = { queried: 0, duplicates: 0 };
  const seen = new Set<string>();
  const heldOut = pickImages(strip(p.heldOut), fresh(p.heldOut, p.queriedHashes, seen, counts));
  const held = new Set(seen);
  seen.clear();
  const cap = p.images ?? Infinity;
  const parts: ImageSet[] = [];
  let taken = 0;
  let fromExtra = 0;
  for (const s of [...p.extra, ...(p.queriedSource ? [p.queriedSource] : [])]) {
    if (taken >= cap) break;
    const keep = fresh(s, p.queriedHashes, seen, counts, held);
    const part = pickImages(strip(s), keep.slice(0, Math.min(keep.length, cap - taken)));
    parts.push(part);
    taken += part.n;
    if (s !== p.queriedSource) fromExtra += part.n;
  }
  const train = concat(parts, height, width);
  return {
    train, heldOut,
    summary: {
      trainImages: train.n, heldOutImages: heldOut.n, fromExtraSources: fromExtra, fromQueriedSource: train.n - fromExtra,
      excludedAsQueried: counts.queried, duplicates: counts.duplicates,
    },
  };
}

const strip = (s: ImageSet): ImageSet => ({ images: s.images, n: s.n, height: s.height, width: s.width, ids: s.ids });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** One line for notebooks and logs. */
export function formatPoolSummary(s: PoolSummary): string {
  return `unqueried pool: ${s.trainImages} images to learn from without labels (${s.fromExtraSources} from the extra sources, ` +
    `${s.fromQueriedSource} from the queried source's images not paid for), ${s.heldOutImages} held out for the unseen-NPD agreement; ` +
    `${s.excludedAsQueried} left out as paid for${s.duplicates ? `, ${s.duplicates} duplicates` : ''}`;
}
