import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { prepareWasm, registerWasmTrainingKernels } from '../src/platform/wasm';

/**
 * A tiny conv net trained a few SGD steps on 'wasm' (with the training kernels) and on 'cpu' from the same
 * seeded weights and data must follow the same losses, and leave no tensors behind.
 */

function tinyNet(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [12, 12, 3], filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'valid', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  m.add(tf.layers.conv2d({ filters: 8, kernelSize: 1, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }));
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
  return m;
}

const N = 8;
let xs: Float32Array;
const labels = Int32Array.from({ length: N }, (_, i) => (i * 7) % 10);

async function train(backend: string, steps: number): Promise<{ losses: number[]; weights: Float32Array[]; tensors: number[]; dataIds: number[] }> {
  await tf.setBackend(backend);
  const model = tinyNet();
  const x = tf.tensor4d(xs, [N, 12, 12, 3]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), 10));
  const losses: number[] = [];
  const tensors: number[] = [];
  const dataIds: number[] = [];
  for (let i = 0; i < steps; i++) {
    losses.push((await model.trainOnBatch(x, y)) as number);
    tensors.push(tf.memory().numTensors);
    dataIds.push(tf.backend().numDataIds());
  }
  const weights = model.getWeights().map((w) => (w.dataSync() as Float32Array).slice());
  tf.dispose([x, y]);
  model.dispose();
  return { losses, weights, tensors, dataIds };
}

describe('training a conv net on wasm', function () {
  this.timeout(60000);

  before(async () => {
    await prepareWasm({ threads: 1 });
    registerWasmTrainingKernels();
    await tf.setBackend('cpu');
    xs = tf.tidy(() => tf.randomUniform([N, 12, 12, 3], -1, 1, 'float32', 7).dataSync() as Float32Array).slice();
  });

  after(async () => {
    await tf.setBackend('cpu');
  });

  it('gives the cpu losses and weights, with a flat tensor count', async () => {
    const steps = 5;
    const cpu = await train('cpu', steps);
    const wasm = await train('wasm', steps);
    // eslint-disable-next-line no-console
    console.log(`      losses cpu  ${cpu.losses.map((l) => l.toFixed(6)).join(' ')}\n      losses wasm ${wasm.losses.map((l) => l.toFixed(6)).join(' ')}`);
    assert.ok(cpu.losses[steps - 1] < cpu.losses[0], 'the reference run learns');
    cpu.losses.forEach((l, i) => assert.ok(Math.abs(l - wasm.losses[i]) <= 1e-4 * Math.max(1, Math.abs(l)), `step ${i}: cpu ${l} vs wasm ${wasm.losses[i]}`));
    cpu.weights.forEach((w, i) => {
      let worst = 0;
      for (let j = 0; j < w.length; j++) worst = Math.max(worst, Math.abs(w[j] - wasm.weights[i][j]));
      assert.ok(worst < 1e-4, `weight ${i}: max abs diff ${worst}`);
    });
    // From the second step on (the optimizer creates its state in the first), nothing accumulates.
    assert.deepEqual(wasm.tensors.slice(1), new Array(steps - 1).fill(wasm.tensors[1]), `numTensors per step: ${wasm.tensors}`);
    assert.deepEqual(wasm.dataIds.slice(1), new Array(steps - 1).fill(wasm.dataIds[1]), `wasm data ids per step: ${wasm.dataIds}`);
  });
});
