/**
 * Where inference time goes: per-kernel times (tf.profile) of one batch through a saved model with batch
 * norm folded (what LocalOracle runs; --unfolded: the model as loaded, what evaluation runs), then wall
 * throughput at a few batch sizes. Run it with COPYCAT_FUSED_CONV=0 and =1 to compare tfjs-node's three-op
 * conv + bias + ReLU with _FusedConv2D, or COPYCAT_FAST_BN=0 and =1 for the inference batch norm.
 * --score also predicts the CIFAR-10 test set with evaluateModel and prints the accuracy and a SHA-256 of the
 * 10,000 predicted classes: equal hashes between two settings mean the same answers, image for image.
 *
 *   npm run bench:inference -- --model-dir data/runs/full-1/oracle/model [--batch 256] [--repeats 8] [--unfolded] [--score]
 *
 * Nested kernels are listed too (the stock FusedConv2D kernel calls Add and Relu), so the per-kernel
 * times do not add up to the wall time.
 */
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { formatBackendReport, initBackend } from '../src/platform/backend';
import { loadModel } from '../src/io';
import { foldBatchNorm } from '../src/models/fold';
import { nativeFusedConvActive } from '../src/platform/nativeFusedConv';
import { batchTensor, range } from '../src/preprocess';
import { nativeBatchNormActive } from '../src/platform/nativeBatchNorm';
import { loadCifar10 } from '../src/data/cifar10';
import { evaluateModel } from '../src/evaluate';
import { sha256 } from '../src/io';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'model-dir': { type: 'string' }, batch: { type: 'string', default: '256' }, repeats: { type: 'string', default: '8' },
      unfolded: { type: 'boolean', default: false }, score: { type: 'boolean', default: false },
    },
  });
  if (!values['model-dir']) throw new Error('--model-dir <dir with model.json> is required');
  const batch = Number(values.batch);
  const repeats = Number(values.repeats);
  console.error(formatBackendReport(await initBackend()));
  const model = await loadModel(values['model-dir']);
  const net = values.unfolded ? model : (await foldBatchNorm(model)) ?? model;
  const [, h, w] = model.inputs[0].shape as number[];
  const sizes = [...new Set([batch, 2 * batch, 4 * batch])];
  const n = Math.max(...sizes);
  // Inference cost does not depend on pixel values; a fixed pattern keeps runs comparable.
  const set = { images: Uint8Array.from({ length: n * h * w * 3 }, (_, i) => (i * 2654435761) % 251), height: h, width: w, n };
  const x = batchTensor(set, range(0, batch));
  for (let i = 0; i < 3; i++) tf.tidy(() => (net.predict(x) as tf.Tensor).dataSync());
  const prof = await tf.profile(() => tf.tidy(() => (net.predict(x) as tf.Tensor).dataSync()));
  const byKernel = new Map<string, number>();
  for (const k of prof.kernels) {
    const ms = (await (k.kernelTimeMs as unknown as Promise<number | { error: string }>));
    if (typeof ms === 'number') byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
  }
  x.dispose();
  const throughput: Record<string, number> = {};
  for (const bs of sizes) {
    const xb = batchTensor(set, range(0, bs));
    const t = process.hrtime.bigint();
    for (let r = 0; r < repeats; r++) tf.tidy(() => (net.predict(xb) as tf.Tensor).dataSync());
    throughput[`batch${bs}`] = +((repeats * bs) / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(1);
    xb.dispose();
  }
  const kernelsMs = Object.fromEntries([...byKernel.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, +v.toFixed(1)]));
  let score: { accuracy: number; predictionsSha256: string; imagesPerSecond: number } | null = null;
  if (values.score) {
    const { test } = await loadCifar10();
    const e = await evaluateModel(net, test, batch);
    score = { accuracy: e.metrics.accuracy, predictionsSha256: sha256(e.predictions), imagesPerSecond: +(test.n / e.seconds).toFixed(1) };
  }
  console.log(JSON.stringify({
    bench: 'inference', model: values['model-dir'], folded: net !== model, fusedConv: nativeFusedConvActive(), fastBatchNorm: nativeBatchNormActive(),
    batch, kernelsMs, imagesPerSecond: throughput, score,
  }));
  if (net !== model) net.dispose();
  model.dispose();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
