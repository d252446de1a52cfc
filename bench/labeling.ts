/**
 * Labeling throughput: the same images through the local oracle and through the HTTP oracle (server
 * and client on 127.0.0.1, same process), both driven by the real labeling job (hashing, cache writes,
 * progress), so the figures are what a user waits for. Prints one JSON line.
 *
 *   npx ts-node --transpile-only bench/labeling.ts [--n 80000] [--batch 256] [--arch vgg-small]
 *       [--model-dir <dir>] [--backend auto|tensorflow|wasm|cpu] [--concurrency 4] [--per-request 64]
 *
 * Images: random uint8, or with --npd the real Tiny ImageNet NPD images. Inference cost does not
 * depend on pixel values; PNG uploads of noise are ~3x larger than of natural 32x32 images, so the HTTP
 * figure is if anything pessimistic. Targets (native CPU): 80k local <= 60 s; HTTP >= 50% of local.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { formatBackendReport, initBackend, parseBackendChoice } from '../src/backend';
import { loadModel } from '../src/io';
import { createModel, type ArchitectureName } from '../src/models';
import { HttpOracle } from '../src/oracle/client';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer } from '../src/oracle/server';
import { labelImages } from '../src/stolenLabels';
import { loadNpd } from '../src/data/npd';
import type { ImageSet } from '../src/types';

function positive(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '80000' },
      batch: { type: 'string', default: '256' },
      arch: { type: 'string', default: 'vgg-small' },
      'model-dir': { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      concurrency: { type: 'string', default: '4' },
      'per-request': { type: 'string', default: '64' },
      npd: { type: 'boolean', default: false },
    },
  });
  const n = positive(values.n, '--n');
  const batchSize = positive(values.batch, '--batch');
  const report = await initBackend({ prefer: parseBackendChoice(values.backend!, '--backend'), allowPureJs: true, quiet: true });
  console.error(formatBackendReport(report));
  const model = values['model-dir'] ? await loadModel(values['model-dir']) : createModel(values.arch as ArchitectureName, { seed: 1 });
  const [, h, w] = model.inputs[0].shape as number[];

  let set: ImageSet;
  if (values.npd) {
    // The real NPD images (Tiny ImageNet: the mirror in $COPYCAT_MIRROR_DIR or a download), from the uint8 cache.
    const npd = await loadNpd({ kind: 'tiny-imagenet' }, { size: h, maxImages: n, seed: 1 });
    set = { images: npd.images, n: npd.n, height: h, width: w };
  } else {
    const rng = seedrandom('bench-labeling');
    const random = new Uint8Array(n * h * w * 3);
    for (let i = 0; i < random.length; i++) random[i] = (rng() * 256) | 0;
    set = { images: random, n, height: h, width: w };
  }
  const images = set.images;
  const warm: ImageSet = { images: images.subarray(0, Math.min(n, batchSize) * h * w * 3), n: Math.min(n, batchSize), height: h, width: w };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'copycat-bench-labeling-'));

  try {
    const local = new LocalOracle(model, { batchSize });
    await local.query(warm); // first call builds kernels; not what a long job pays per image
    let t = Date.now();
    await labelImages(local, set, { cacheFile: path.join(dir, 'local.jsonl'), batchSize, progress: false });
    const localSec = (Date.now() - t) / 1000;

    const srv = await startOracleServer({ oracle: new LocalOracle(model, { batchSize }), keys: ['bench'], log: false });
    try {
      const http = await HttpOracle.connect({
        url: srv.url,
        apiKey: 'bench',
        concurrency: positive(values.concurrency, '--concurrency'),
        imagesPerRequest: positive(values['per-request'], '--per-request'),
      });
      await http.query(warm);
      t = Date.now();
      await labelImages(http, set, { cacheFile: path.join(dir, 'http.jsonl'), batchSize, progress: false });
      const httpSec = (Date.now() - t) / 1000;
      const localRate = set.n / localSec;
      const httpRate = set.n / httpSec;
      console.log(
        JSON.stringify({
          bench: 'labeling',
          backend: report.backend,
          model: values['model-dir'] ?? values.arch,
          images: values.npd ? 'npd (Tiny ImageNet)' : 'random',
          n: set.n,
          batchSize,
          concurrency: Number(values.concurrency),
          imagesPerRequest: Number(values['per-request']),
          localSeconds: +localSec.toFixed(2),
          httpSeconds: +httpSec.toFixed(2),
          localImagesPerSecond: +localRate.toFixed(1),
          httpImagesPerSecond: +httpRate.toFixed(1),
          httpOverLocal: +(httpRate / localRate).toFixed(3),
          serverImagesCharged: srv.stats().images - warm.n,
          numTensors: tf.memory().numTensors,
        }),
      );
    } finally {
      await srv.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench/labeling: ${(e as Error).message}`);
  process.exit(1);
});
