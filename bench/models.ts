/**
 * The two fixed benchmark nets. Defined here, not taken from src/models, so that throughput numbers
 * stay comparable across commits even when the experiment models change.
 */
import * as tf from '@tensorflow/tfjs';

export type BenchNetName = 'vgg-small' | 'vgg-bn';
export const BENCH_NETS: readonly BenchNetName[] = ['vgg-small', 'vgg-bn'];

function conv(filters: number, seed: number, extra: Partial<Parameters<typeof tf.layers.conv2d>[0]> = {}): tf.layers.Layer {
  return tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.heNormal({ seed }), ...extra });
}

/** conv32x2-pool-conv64x2-pool-dense256-dense10, ReLU, 'same' padding: the seed replication's net. */
function vggSmall(): tf.Sequential {
  const m = tf.sequential({ name: 'bench-vgg-small' });
  m.add(tf.layers.inputLayer({ inputShape: [32, 32, 3] }));
  let seed = 1;
  for (const w of [32, 64]) {
    m.add(conv(w, seed++, { activation: 'relu' }));
    m.add(conv(w, seed++, { activation: 'relu' }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 256, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }));
  return m;
}

/** 64-64-pool-128-128-pool-256-256-pool, conv -> batch norm -> ReLU, dense256-dense10: the kit's stronger oracle shape. */
function vggBn(): tf.Sequential {
  const m = tf.sequential({ name: 'bench-vgg-bn' });
  m.add(tf.layers.inputLayer({ inputShape: [32, 32, 3] }));
  let seed = 1;
  for (const w of [64, 128, 256]) {
    for (let j = 0; j < 2; j++) {
      m.add(conv(w, seed++, { useBias: false }));
      m.add(tf.layers.batchNormalization());
      m.add(tf.layers.activation({ activation: 'relu' }));
    }
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 256, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }));
  return m;
}

/** Builds and compiles a bench net with the paper's optimizer family (SGD with momentum 0.9). */
export function buildBenchNet(name: BenchNetName): tf.LayersModel {
  const m = name === 'vgg-small' ? vggSmall() : name === 'vgg-bn' ? vggBn() : undefined;
  if (!m) throw new Error(`unknown bench net '${name}'; expected one of ${BENCH_NETS.join(', ')}`);
  m.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'categoricalCrossentropy' });
  return m;
}
