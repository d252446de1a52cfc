import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { ImageSet } from '../src/types';

// Shared by the training tests (train.test.ts, mixup.test.ts).

/** n images h x w where class k has a brighter channel k: learnable, and invariant to flips/crops. */
export function tinySet(n: number, h = 8, w = 8, numClasses = 3, seed = 'fixture'): ImageSet {
  const rng = seedrandom(seed);
  const images = new Uint8Array(n * h * w * 3);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % numClasses;
    labels[i] = c;
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) images[(i * h * w + p) * 3 + ch] = Math.floor(rng() * 120) + (ch === c ? 110 : 0);
    }
  }
  return { images, n, height: h, width: w, labels };
}

/**
 * A deliberately small net (conv4 -> BN -> ReLU -> pool -> dropout -> dense): the pure-JS 'cpu'
 * backend's Conv2DBackpropFilter runs at a few M multiply-adds per second, so the registry's nets are
 * too slow for many training steps in unit tests. Same structure as theirs (BN, dropout, logits+softmax).
 */
export function tiny(seed = 1): tf.LayersModel {
  const input = tf.input({ shape: [8, 8, 3] });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.heNormal({ seed }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.batchNormalization({ momentum: 0.9 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: 0.25 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.flatten().apply(x) as tf.SymbolicTensor;
  x = tf.layers.dense({ units: 3, name: 'logits', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.activation({ activation: 'softmax' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

export async function weightsOf(model: tf.LayersModel): Promise<Float32Array[]> {
  return Promise.all(model.getWeights().map(async (w) => (await w.data()) as Float32Array));
}
