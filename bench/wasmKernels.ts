/**
 * Train throughput (images/s) of the small VGG-like net (conv32x2-pool-conv64x2-pool-dense256-dense10,
 * batch 64, 32x32x3) on the 'wasm' backend, with and without the training kernels of src/platform/wasm, with 1
 * and 2 threads. One JSON line per configuration; each runs in its own process because a wasm backend's
 * thread count is fixed once per process.
 *
 *   npx ts-node --transpile-only bench/wasmKernels.ts [--steps 3] [--threads 1,2] [--kernels none,dFilterOnly,all]
 *
 * kernels: 'all' = every kernel of src/platform/wasm; 'dFilterOnly' = the package's own kernels plus only the
 * Conv2DBackpropFilter it lacks (the least that trains); 'none' = the package alone (cannot train a CNN).
 */
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs';
import { prepareWasm, registerWasmTrainingKernels, wasmThreadsInfo } from '../src/platform/wasm';

type KernelMode = 'all' | 'dFilterOnly' | 'none';
const BATCH = 64;

function vggSmall(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same', activation: 'relu' }));
  m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tf.layers.flatten());
  m.add(tf.layers.dense({ units: 256, activation: 'relu' }));
  m.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  m.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
  return m;
}

async function child(kernels: KernelMode, threads: number, steps: number): Promise<void> {
  await prepareWasm({ threads });
  if (kernels === 'all') registerWasmTrainingKernels();
  if (kernels === 'dFilterOnly') registerWasmTrainingKernels(['Conv2DBackpropFilter']);
  await tf.setBackend('wasm');
  const base = { bench: 'wasmKernels', backend: 'wasm', kernels, ...wasmThreadsInfo(), batch: BATCH, steps };
  const model = vggSmall();
  const x = tf.randomNormal([BATCH, 32, 32, 3], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32', 2), 10));
  try {
    await model.trainOnBatch(x, y); // warm-up: XNNPACK operators, JIT
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < steps; i++) await model.trainOnBatch(x, y);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(JSON.stringify({ ...base, trainImgPerSec: +((BATCH * steps) / s).toFixed(1), msPerStep: +((1000 * s) / steps).toFixed(1) }));
  } catch (e) {
    console.log(JSON.stringify({ ...base, trainImgPerSec: null, error: (e as Error).message }));
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
  };
  const steps = Number(opt('steps', '3'));
  if (!(Number.isInteger(steps) && steps >= 1)) throw new Error(`--steps must be an integer >= 1, got ${opt('steps', '3')}`);
  if (args.includes('--child')) {
    await child(opt('kernels', 'all') as KernelMode, Number(opt('threads', '1')), steps);
    return;
  }
  const threadList = opt('threads', '1,2').split(',').map(Number);
  const kernelList = opt('kernels', 'none,dFilterOnly,all').split(',') as KernelMode[];
  for (const threads of threadList) {
    for (const kernels of kernelList) {
      const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--child', '--kernels', kernels, '--threads', String(threads), '--steps', String(steps)], { encoding: 'utf8', timeout: 600000 });
      const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
      console.log(line ?? JSON.stringify({ bench: 'wasmKernels', kernels, threads, error: `child exited ${r.status}: ${(r.stderr ?? '').slice(-300)}` }));
    }
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
