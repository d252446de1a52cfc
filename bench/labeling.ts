/**
 * Labeling throughput: the same images through the local oracle and through the HTTP oracle (server
 * and client on 127.0.0.1, same process), both driven by the real labeling job (hashing, cache writes,
 * progress), so the figures are what a user waits for. Prints one JSON line.
 *
 *   npx ts-node --transpile-only bench/labeling.ts [--n 80000] [--batch 256] [--arch vgg-small]
 *       [--model-dir <dir>] [--backend auto|tensorflow|wasm|cpu] [--concurrency 4] [--per-request 64]
 *       [--server inline|process] [--local-only] [--repeats 1]
 *
 * Images: random uint8, or with --npd the real Tiny ImageNet NPD images. Inference cost does not
 * depend on pixel values; PNG uploads of noise are ~3x larger than of natural 32x32 images, so the HTTP
 * figure is if anything pessimistic. Targets (native CPU): 80k local <= 60 s; HTTP >= 70% of local (issue 51).
 * --server inline (default) runs the server in this process, so client and server share one event
 * loop; --server process starts `npm run oracle:serve` as its own process (how a real deployment
 * runs), so the client's PNG encoding overlaps the server's decoding and inference.
 * --repeats N labels the images N times through the local oracle (fresh cache each time) and reports the
 * median as localSeconds, with every run in localRuns: a shared VM's speed drifts by tens of percent from
 * one minute to the next, and one run says little about a 60 s target.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { formatBackendReport, initBackend, parseBackendChoice } from '../src/platform/backend';
import { loadModel, saveModel } from '../src/io';
import { createModel, type ArchitectureName } from '../src/models';
import { HttpOracle } from '../src/oracle/client';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer } from '../src/oracle/server';
import { labelImages } from '../src/stolenLabels';
import { nativeFusedConvActive } from '../src/platform/nativeFusedConv';
import { loadNpd } from '../src/data/npd';
import type { ImageSet } from '../src/types';
import { median, positiveInt } from './args';


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
      server: { type: 'string', default: 'inline' },
      'local-only': { type: 'boolean', default: false },
      repeats: { type: 'string', default: '1' },
    },
  });
  const n = positiveInt(values.n, '--n');
  if (values.server !== 'inline' && values.server !== 'process') throw new Error(`--server must be inline or process, got '${values.server}'`);
  const batchSize = positiveInt(values.batch, '--batch');
  const repeats = positiveInt(values.repeats, '--repeats');
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
  // Warm-up images not in the set: the HTTP client's Idempotency-Keys are derived from the images, so
  // warming up on the set's first batch would have the server replay it for free during the timed run.
  const warmN = Math.min(n, batchSize);
  const warm: ImageSet = { images: images.subarray(0, warmN * h * w * 3).map((v) => 255 - v), n: warmN, height: h, width: w };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'copycat-bench-labeling-'));

  try {
    const local = new LocalOracle(model, { batchSize });
    await local.query(warm); // first call builds kernels; not what a long job pays per image
    const localRuns: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = Date.now();
      await labelImages(local, set, { cacheFile: path.join(dir, `local-${r}.jsonl`), batchSize, progress: false });
      localRuns.push(+((Date.now() - t0) / 1000).toFixed(2));
    }
    const localSec = median(localRuns);

    if (values['local-only']) {
      console.log(JSON.stringify({ bench: 'labeling', backend: report.backend, model: values['model-dir'] ?? values.arch, n: set.n, batchSize, localSeconds: +localSec.toFixed(2), localRuns, localImagesPerSecond: +(set.n / localSec).toFixed(1), fusedConv: nativeFusedConvActive() }));
      return;
    }
    const srv = values.server === 'process'
      ? await serverProcess(values['model-dir'] ?? (await savedCopy(model, dir)), values.backend!)
      : await startOracleServer({ oracle: new LocalOracle(model, { batchSize }), keys: ['bench'], log: false });
    let httpSec: number;
    try {
      const http = await HttpOracle.connect({
        url: srv.url,
        apiKey: 'bench',
        concurrency: positiveInt(values.concurrency, '--concurrency'),
        imagesPerRequest: positiveInt(values['per-request'], '--per-request'),
      });
      await http.query(warm);
      const t = Date.now();
      await labelImages(http, set, { cacheFile: path.join(dir, 'http.jsonl'), batchSize, progress: false });
      httpSec = (Date.now() - t) / 1000;
    } finally {
      await srv.close();
    }
    // After close: a server process reports its totals when it stops.
    const charged = (await srv.stats()).images - warm.n;
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
        server: values.server,
        localSeconds: +localSec.toFixed(2),
        localRuns,
        httpSeconds: +httpSec.toFixed(2),
        localImagesPerSecond: +localRate.toFixed(1),
        httpImagesPerSecond: +httpRate.toFixed(1),
        httpOverLocal: +(httpRate / localRate).toFixed(3),
        serverImagesCharged: charged,
        numTensors: tf.memory().numTensors,
      }),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The bench model saved where a server process can load it. */
async function savedCopy(model: tf.LayersModel, dir: string): Promise<string> {
  const out = path.join(dir, 'model');
  await saveModel(model, out);
  return out;
}

/**
 * `npm run oracle:serve` as a child process on a free port; resolves once it prints its URL. The
 * server prints its totals as one JSON line when it stops (SIGINT), which is what stats() returns
 * after close().
 */
async function serverProcess(modelDir: string, backend: string): Promise<{ url: string; stats(): Promise<{ images: number }>; close(): Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, '..', 'scripts', 'serve-oracle.ts'),
    '--model', modelDir, '--port', '0', '--key', 'bench', '--quiet', '--backend', backend], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`oracle server process exited with ${code} before listening:\n${out}`)));
  });
  let lastStats = { images: 0 };
  return {
    url,
    async stats() {
      return lastStats;
    },
    async close() {
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      child.kill('SIGINT');
      await exited;
      // On Ctrl-C the server prints its totals as one JSON line.
      const line = out.split('\n').reverse().find((l) => l.startsWith('{'));
      if (line) lastStats = JSON.parse(line) as { images: number };
    },
  };
}

main().catch((e) => {
  console.error(`bench/labeling: ${(e as Error).message}`);
  process.exit(1);
});
