import * as path from 'path';
import sharp from 'sharp';
import { randomImages, tmpDir } from './oracleFixtures';

/** A folder of n made-up 32x32 PNGs: an NPD source that needs no mirror. */
export async function npdFolder(n: number, seed = 'npd-folder'): Promise<string> {
  const dir = tmpDir('npd-folder');
  const set = randomImages(n, 32, seed);
  for (let i = 0; i < n; i++) {
    const px = Buffer.from(set.images.subarray(i * 32 * 32 * 3, (i + 1) * 32 * 32 * 3));
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, `img${String(i).padStart(3, '0')}.png`));
  }
  return dir;
}

/** Smoke-profile overrides small enough for a test: a few hundred images, one epoch, resnet-small. */
export function tinyOverrides(npdDir: string, copycatEpochs = 1, pool: { dir: string; heldOutImages: number } | null = null) {
  const train = { epochs: 1, batchSize: 64, schedule: { kind: 'cosine', warmupEpochs: 0 } };
  return {
    data: {
      oracleTrainImages: 256, testImages: 128, curveTestImages: 64, npdImages: 96, pdImages: 64, npdSource: { kind: 'folder', path: npdDir },
      // No pool unless asked for: the profile's (the 20k Tiny ImageNet zip) needs the mirror.
      pool: pool ? { sources: [{ kind: 'folder', path: pool.dir }], heldOutImages: pool.heldOutImages, images: null } : null,
    },
    oracle: { architecture: 'resnet-small', train },
    copycat: { architecture: 'resnet-small', train: { ...train, epochs: copycatEpochs, classBalanced: true } },
  };
}
