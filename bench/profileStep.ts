/**
 * Where one training step of a registry architecture spends its time, per TF.js kernel (tf.profile),
 * on random inputs. Used to find the ReLU-gradient and batch-norm costs that src/platform/nativeGradients.ts
 * and src/models/fastBatchNorm.ts remove.
 *
 *   npx ts-node --transpile-only bench/profileStep.ts [--arch resnet-9] [--batch 128] [--backend auto]
 *
 * Kernel times of nested scopes are counted in their parents too, so the column does not sum to the
 * step time; ops run directly on the native backend (ReluGrad, FusedBatchNorm*) are not listed.
 */
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { formatBackendReport, initBackend, parseBackendChoice } from '../src/platform/backend';
import { ArchitectureName, createModel } from '../src/models';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { arch: { type: 'string', default: 'resnet-9' }, batch: { type: 'string', default: '128' }, backend: { type: 'string', default: 'auto' } } });
  const batch = Number(values.batch);
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`--batch must be a positive integer, got '${values.batch}'`);
  console.log(formatBackendReport(await initBackend({ prefer: parseBackendChoice(values.backend!, '--backend') })));
  const model = createModel(values.arch as ArchitectureName, { seed: 1 });
  const x = tf.randomNormal([batch, 32, 32, 3], 0, 1, 'float32', 1);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 10), 'int32'), 10));
  const opt = tf.train.momentum(0.01, 0.9);
  const step = (): void => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
    loss?.dataSync();
    loss?.dispose();
  };
  step();
  step();
  const prof = await tf.profile(() => step());
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of prof.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += Number(k.kernelTimeMs);
    e.calls += 1;
    byKernel.set(k.name, e);
  }
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) {
    console.log(`${name.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(5)} calls`);
  }
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) step();
  const ms = (performance.now() - t0) / 5;
  console.log(JSON.stringify({ bench: 'profileStep', arch: values.arch, batch, stepMs: +ms.toFixed(1), imagesPerSecond: +((1000 * batch) / ms).toFixed(1) }));
}

main().catch((e) => {
  console.error(`bench/profileStep: ${(e as Error).message}`);
  process.exit(1);
});
