/**
 * Training and inference throughput of the two fixed bench nets on one backend, on random uint8 images
 * fed through the kit's own batch path (uint8 -> normalised float per batch). One JSON line per net.
 *
 *   npm run bench:throughput -- [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--net vgg-small|vgg-bn|all]
 *                               [--epochs N] [--images N] [--batch 64] [--infer-images N]
 *
 * Train img/s is the median over timed epochs after one warm-up epoch; each step awaits its loss, as a
 * real training loop does. numTensorsPerEpoch must stay flat (a leak shows as growth). peakRssMB is the
 * process's maximum resident set so far (so the second net's figure includes the first's peak).
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import { BackendChoice, formatBackendReport, initBackend, parseBackendChoice } from '../src/platform/backend';
import { batchTensor, predictProbabilities } from '../src/preprocess';
import { ImageSet } from '../src/types';
import { median, positiveInt } from './args';
import { BENCH_NETS, BenchNetName, buildBenchNet } from './models';

interface Args {
  backend: BackendChoice;
  nets: BenchNetName[];
  epochs?: number;
  images?: number;
  batch: number;
  inferImages?: number;
}

/** Defaults sized so one run of both nets takes about two minutes on native CPU with 2 cores. */
const DEFAULTS: Record<BenchNetName, { epochs: number; images: number; inferImages: number }> = {
  'vgg-small': { epochs: 5, images: 1280, inferImages: 2560 },
  'vgg-bn': { epochs: 3, images: 640, inferImages: 1280 },
};

function parseArgs(argv: string[]): Args {
  const a: Args = { backend: 'auto', nets: [...BENCH_NETS], batch: 64 };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = argv[i + 1];
    if (f === '--backend') a.backend = parseBackendChoice(String(v), '--backend');
    else if (f === '--net') {
      if (v === 'all') a.nets = [...BENCH_NETS];
      else if ((BENCH_NETS as readonly string[]).includes(String(v))) a.nets = [v as BenchNetName];
      else throw new Error(`--net must be one of ${BENCH_NETS.join(', ')}, all; got '${v}'`);
    } else if (f === '--epochs') a.epochs = positiveInt(v, f);
    else if (f === '--images') a.images = positiveInt(v, f);
    else if (f === '--batch') a.batch = positiveInt(v, f);
    else if (f === '--infer-images') a.inferImages = positiveInt(v, f);
    else throw new Error(`unknown option ${f}`);
    i++;
  }
  return a;
}

/** Deterministic random uint8 images and labels (xorshift32), generated once per size. */
function randomSet(n: number, seed: number): ImageSet & { labels: Uint8Array } {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const images = new Uint8Array(n * 32 * 32 * 3);
  for (let i = 0; i < images.length; i++) images[i] = next() & 255;
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = next() % 10;
  return { images, labels, n, height: 32, width: 32 };
}

/** One pass over `set` in batches; returns seconds. */
async function trainEpoch(model: tf.LayersModel, set: ImageSet & { labels: Uint8Array }, batch: number): Promise<number> {
  const t0 = performance.now();
  for (let start = 0; start + batch <= set.n; start += batch) {
    const idx = Int32Array.from({ length: batch }, (_, i) => start + i);
    const x = batchTensor(set, idx);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d(set.labels.subarray(start, start + batch), 'int32'), 10));
    try {
      const loss = await model.trainOnBatch(x, y);
      if (!Number.isFinite(Number(loss))) throw new Error(`loss became ${loss}`);
    } finally {
      x.dispose();
      y.dispose();
    }
  }
  return (performance.now() - t0) / 1000;
}

async function benchNet(name: BenchNetName, args: Args): Promise<Record<string, unknown>> {
  const d = DEFAULTS[name];
  const epochs = args.epochs ?? d.epochs;
  const images = Math.max(args.batch, Math.floor((args.images ?? d.images) / args.batch) * args.batch);
  const inferImages = args.inferImages ?? d.inferImages;
  const model = buildBenchNet(name);
  const trainSet = randomSet(images, 1);
  const inferSet = randomSet(inferImages, 2);

  // Warm-up: kernel selection, oneDNN primitive caches, wasm heap growth, optimizer slot creation.
  const warmSet = { ...trainSet, n: Math.min(trainSet.n, 3 * args.batch) };
  const warmSeconds = await trainEpoch(model, warmSet, args.batch);
  const tensorsAfterWarmup = tf.memory().numTensors;
  const trainImgPerSec: number[] = [];
  const numTensorsPerEpoch: number[] = [];
  for (let e = 0; e < epochs; e++) {
    const sec = await trainEpoch(model, trainSet, args.batch);
    trainImgPerSec.push(images / sec);
    numTensorsPerEpoch.push(tf.memory().numTensors);
  }

  await predictProbabilities(model, { ...inferSet, n: Math.min(256, inferSet.n) }, 256);
  const inferRuns: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    await predictProbabilities(model, inferSet, 256);
    inferRuns.push(inferImages / ((performance.now() - t0) / 1000));
  }
  const params = model.countParams();
  model.dispose();
  const round = (x: number): number => Math.round(x * 10) / 10;
  return {
    bench: 'throughput',
    net: name,
    params,
    batch: args.batch,
    epochImages: images,
    epochs,
    warmupSeconds: round(warmSeconds),
    trainImgPerSec: round(median(trainImgPerSec)),
    trainImgPerSecEpochs: trainImgPerSec.map(round),
    inferImgPerSec: round(median(inferRuns)),
    inferImages,
    numTensorsAfterWarmup: tensorsAfterWarmup,
    numTensorsPerEpoch,
    tensorsFlat: numTensorsPerEpoch.every((n) => n === tensorsAfterWarmup),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  // A benchmark may measure pure JS on purpose: allow it, the report still says 'cpu'.
  const report = await initBackend({ prefer: args.backend, allowPureJs: true, quiet: true });
  console.error(formatBackendReport(report));
  for (const net of args.nets) {
    const started = Date.now();
    const result = await benchNet(net, args);
    console.log(
      JSON.stringify({
        ...result,
        backend: report.backend,
        backendLabel: report.label,
        tfjs: report.tfjsVersion,
        threads: report.threads,
        cores: os.availableParallelism?.() ?? os.cpus().length,
        loadavg1mAtEnd: Math.round(os.loadavg()[0] * 100) / 100,
        wallSeconds: Math.round((Date.now() - started) / 100) / 10,
        date: new Date().toISOString(),
      }),
    );
  }
}

main().then(
  // Explicit exit: the threaded wasm backend's pthread workers keep Node's event loop alive after the work is done.
  () => process.exit(0),
  (err: Error) => {
    console.error(`bench:throughput failed: ${err.message}`);
    process.exit(1);
  },
);
