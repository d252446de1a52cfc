import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { imageHash } from '../src/oracle/identity';
import type { Oracle, OracleAnswer, OracleInfo, OracleStats } from '../src/oracle/types';
import type { ImageSet } from '../src/types';
import { tempDir } from './tempDirs';

/** Shared fixtures for the oracle and stolen-label tests: a tiny seeded model and random images. */

export function tinyModel(size = 8, numClasses = 10, seed = 7): tf.LayersModel {
  const model = tf.sequential({ name: 'tiny-oracle' });
  model.add(tf.layers.flatten({ inputShape: [size, size, 3] }));
  model.add(tf.layers.dense({ units: numClasses, activation: 'softmax', kernelInitializer: tf.initializers.randomNormal({ stddev: 0.3, seed }) }));
  return model;
}

export function randomImages(n: number, size = 8, seed = 'imgs'): ImageSet {
  const rng = seedrandom(seed);
  const images = new Uint8Array(n * size * size * 3);
  for (let i = 0; i < images.length; i++) images[i] = Math.floor(rng() * 256);
  return { images, n, height: size, width: size, ids: Array.from({ length: n }, (_, i) => `img${i}`) };
}

export function tmpDir(prefix: string): string {
  return tempDir(`copycat-${prefix}-`);
}

/**
 * An oracle that answers like `inner` after `delayMs(call)` ms and counts every image it answers by
 * content: behind the kit's server it is the bill (each image it sees is one the server charged).
 */
export class CountingOracle implements Oracle {
  /** Times each image (SHA-1 of its RGB bytes) was answered. */
  readonly seen = new Map<string, number>();
  images = 0;
  calls = 0;
  constructor(
    private readonly inner: Oracle,
    private readonly delayMs: (call: number) => number = () => 0,
  ) {}
  get info(): OracleInfo {
    return this.inner.info;
  }
  stats(): OracleStats {
    return this.inner.stats();
  }
  /** Images answered more than once. */
  get repeats(): number {
    let r = 0;
    for (const c of this.seen.values()) r += c - 1;
    return r;
  }
  async query(batch: ImageSet): Promise<OracleAnswer[]> {
    const call = this.calls++;
    const wait = this.delayMs(call);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const answers = await this.inner.query(batch);
    const px = batch.height * batch.width * 3;
    for (let i = 0; i < batch.n; i++) {
      const h = imageHash(batch.images, i, px);
      this.seen.set(h, (this.seen.get(h) ?? 0) + 1);
    }
    this.images += batch.n;
    return answers;
  }
}
