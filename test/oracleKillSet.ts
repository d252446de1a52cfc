import { concatImageSets } from '../src/stolenLabels';
import type { ImageSet } from '../src/types';
import { randomImages } from './oracleFixtures';

/**
 * The images test/oracleKill.test.ts labels in a child process: n random 8x8 images, the last tenth
 * repeating the first (a set with duplicates, asked once each). Shared so the test and the child agree.
 */
export function killSet(n: number): ImageSet {
  const dups = Math.floor(n / 10);
  const base = randomImages(n - dups, 8, 'kill-set');
  const { ids: _ids, ...head } = { ...base, n: dups, images: base.images.subarray(0, dups * 192) };
  const { ids: _i2, ...all } = base;
  return concatImageSets(all, head);
}

/** Distinct images of killSet(n). */
export const killSetDistinct = (n: number): number => n - Math.floor(n / 10);
