import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
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
