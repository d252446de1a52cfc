/**
 * The kit's training and inference speed against PyTorch's on the same machine, in one run (issue 54).
 * For each net and round, the kit's own training loop (src/train train(): uint8 batches, crop+flip,
 * SGD momentum 0.9, weight decay 5e-4, loss read every step) and the same net and step in PyTorch
 * (bench/torch_nets.py, run from the project's Python venv) take turns; the order flips every round,
 * so a slow minute on a shared VM lands on both sides. One JSON line per net: medians, ranges, ratios
 * (kit / PyTorch; > 1 means the kit is faster), machine and library versions.
 *
 *   npm run bench:vs-pytorch [-- --arch vgg-small,resnet-9,resnet-9w64] [--rounds 3] [--images 2560] [--threads 2]
 *
 * Without torch in the venv the PyTorch side is skipped with one line that says how to add it
 * (`bash scripts/jupyter-env.sh pip-install torch`) and the kit's figures are still printed.
 * Compare only on a quiet machine: PyTorch's OpenMP threads collapse when another process shares the cores.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import * as tf from '@tensorflow/tfjs';
import { formatBackendReport, initBackend, parseBackendChoice } from '../src/platform/backend';
import { ArchitectureName, createModel, listArchitectures } from '../src/models';
import { foldBatchNorm } from '../src/models/fold';
import { predictProbabilities } from '../src/preprocess';
import { train } from '../src/train';
import { median, positiveInt, syntheticSet } from './args';

/** Batch per net as in the table: vgg-small was measured at 64, the ResNet-9 family at 128. */
const DEFAULT_BATCH: Partial<Record<ArchitectureName, number>> = { 'vgg-small': 64 };
/** Nets bench/torch_nets.py builds too. */
export const TORCH_NETS: ArchitectureName[] = ['vgg-small', 'resnet-9', 'resnet-9w32', 'resnet-9w64'];

export interface Speed {
  trainImgPerSec: number;
  inferImgPerSec: number;
  /** The kit only: inference with batch norm folded into the convolutions, as LocalOracle answers queries. */
  inferFoldedImgPerSec?: number;
}

export interface TorchSide {
  python: string;
  /** Why PyTorch is not measured, or null when it is. */
  skipped: string | null;
}

/** The venv's python when it can import torch; otherwise the reason, naming the venv and the fix. */
export function findTorch(python: string): TorchSide {
  if (!fs.existsSync(python)) {
    return { python, skipped: `no Python at ${python} (create the project venv with: bash scripts/jupyter-env.sh, then: bash scripts/jupyter-env.sh pip-install torch)` };
  }
  try {
    execFileSync(python, ['-c', 'import torch'], { stdio: 'pipe' });
    return { python, skipped: null };
  } catch {
    return { python, skipped: `torch is not installed in ${python} (add it with: bash scripts/jupyter-env.sh pip-install torch)` };
  }
}

/** One round of the kit's side: the second of two epochs (the first builds kernels and optimizer slots). */
async function kitRound(arch: ArchitectureName, set: ReturnType<typeof syntheticSet>, batchSize: number): Promise<Speed> {
  const n = set.n;
  const model = createModel(arch, { seed: 1 });
  let folded: tf.LayersModel | undefined;
  try {
    const r = await train(model, set, {
      epochs: 2, batchSize, optimizer: 'sgd', learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4,
      schedule: { kind: 'constant' }, augmentation: { crop: true, flip: true, pad: 4 },
    }, { log: false });
    // Inference twice: the trained model as evaluation scores it, and its batch-norm-folded copy as the
    // oracle answers queries (src/oracle/local.ts). One untimed batch first for each, as on PyTorch's side:
    // inference mode builds its own kernels on the first call.
    const timed = async (m: typeof model) => {
      await predictProbabilities(m, { ...set, n: Math.min(256, n) }, 256);
      const t0 = performance.now();
      await predictProbabilities(m, set, 256);
      return n / ((performance.now() - t0) / 1000);
    };
    const inferImgPerSec = await timed(model);
    folded = (await foldBatchNorm(model)) ?? undefined;
    const inferFoldedImgPerSec = folded ? await timed(folded) : inferImgPerSec;
    return { trainImgPerSec: r.history[1].imagesPerSecond, inferImgPerSec, inferFoldedImgPerSec };
  } finally {
    model.dispose();
    folded?.dispose();
  }
}

function torchRound(python: string, arch: ArchitectureName, n: number, batchSize: number, threads: number): Speed & { torch: string; python: string } {
  const script = path.join(__dirname, 'torch_nets.py');
  const out = execFileSync(python, [script, '--arch', arch, '--images', String(n), '--batch', String(batchSize), '--threads', String(threads)], { encoding: 'utf8' });
  const line = out.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`bench/torch_nets.py --arch ${arch}: expected one JSON line, got '${line.slice(0, 200)}'`);
  }
}

export interface NetRecord {
  bench: 'vs-pytorch';
  arch: ArchitectureName;
  batch: number;
  rounds: number;
  kit: { train: number[]; infer: number[]; inferFolded: number[] };
  pytorch: { train: number[]; infer: number[] } | null;
  /** Median kit img/s over median PyTorch img/s; null without PyTorch. */
  trainRatio: number | null;
  inferRatio: number | null;
  /** The kit's folded inference (the oracle's path) over PyTorch's eval-mode inference. */
  inferFoldedRatio: number | null;
}

/** The per-net record from its rounds: medians are compared, the ranges show the spread. */
export function summarise(arch: ArchitectureName, batch: number, kit: Speed[], torch: Speed[] | null): NetRecord {
  const r1 = (x: number) => +x.toFixed(1);
  const ratio = (k: number[], t: number[]) => +(median(k) / median(t)).toFixed(2);
  const kitTrain = kit.map((s) => r1(s.trainImgPerSec));
  const kitInfer = kit.map((s) => r1(s.inferImgPerSec));
  const kitFolded = kit.map((s) => r1(s.inferFoldedImgPerSec ?? s.inferImgPerSec));
  const pt = torch && { train: torch.map((s) => r1(s.trainImgPerSec)), infer: torch.map((s) => r1(s.inferImgPerSec)) };
  return {
    bench: 'vs-pytorch', arch, batch, rounds: kit.length,
    kit: { train: kitTrain, infer: kitInfer, inferFolded: kitFolded },
    pytorch: pt,
    trainRatio: pt ? ratio(kitTrain, pt.train) : null,
    inferRatio: pt ? ratio(kitInfer, pt.infer) : null,
    inferFoldedRatio: pt ? ratio(kitFolded, pt.infer) : null,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: 'vgg-small,resnet-9,resnet-9w64' },
      rounds: { type: 'string', default: '3' },
      images: { type: 'string', default: '2560' },
      batch: { type: 'string' },
      threads: { type: 'string', default: String(os.availableParallelism?.() ?? os.cpus().length) },
      python: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
    },
  });
  const known = listArchitectures().map((a) => a.name);
  const archs = values.arch!.split(',') as ArchitectureName[];
  for (const a of archs) {
    if (!known.includes(a)) throw new Error(`--arch: unknown architecture '${a}'; expected some of ${TORCH_NETS.join(', ')}`);
    if (!TORCH_NETS.includes(a)) throw new Error(`--arch: '${a}' has no PyTorch twin in bench/torch_nets.py; expected some of ${TORCH_NETS.join(', ')}`);
  }
  const rounds = positiveInt(values.rounds, '--rounds');
  const n = positiveInt(values.images, '--images');
  const threads = positiveInt(values.threads, '--threads');
  const batchFor = (a: ArchitectureName) => (values.batch ? positiveInt(values.batch, '--batch') : DEFAULT_BATCH[a] ?? 128);
  const venv = process.env.COPYCAT_VENV ?? path.join(__dirname, '..', '.venv');
  const side = findTorch(values.python ?? path.join(venv, 'bin', 'python'));

  const report = await initBackend({ prefer: parseBackendChoice(values.backend!, '--backend') });
  console.error(formatBackendReport(report));
  if (side.skipped) console.log(`bench:vs-pytorch: PyTorch side skipped: ${side.skipped}`);
  const set = syntheticSet(n);
  let torchVersion: string | null = null;
  let pythonVersion: string | null = null;

  for (const arch of archs) {
    const batch = batchFor(arch);
    const kit: Speed[] = [];
    const torch: Speed[] = [];
    for (let r = 0; r < rounds; r++) {
      // Flip the order each round so neither side always runs on the warmer (or busier) half.
      const sides = r % 2 === 0 ? ['kit', 'torch'] : ['torch', 'kit'];
      for (const s of sides) {
        if (s === 'kit') {
          kit.push(await kitRound(arch, set, batch));
          console.error(`round ${r + 1}/${rounds} ${arch} kit: train ${kit[kit.length - 1].trainImgPerSec.toFixed(0)} img/s, infer ${kit[kit.length - 1].inferImgPerSec.toFixed(0)} img/s (folded ${kit[kit.length - 1].inferFoldedImgPerSec?.toFixed(0)})`);
        } else if (!side.skipped) {
          const t = torchRound(side.python, arch, n, batch, threads);
          torchVersion = t.torch;
          pythonVersion = t.python;
          torch.push(t);
          console.error(`round ${r + 1}/${rounds} ${arch} pytorch: train ${t.trainImgPerSec.toFixed(0)} img/s, infer ${t.inferImgPerSec.toFixed(0)} img/s`);
        }
      }
    }
    console.log(JSON.stringify({
      ...summarise(arch, batch, kit, side.skipped ? null : torch),
      machine: { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.availableParallelism?.() ?? os.cpus().length, loadavg1: +os.loadavg()[0].toFixed(2) },
      versions: {
        kitBackend: report.label, tfjs: report.tfjsVersion, libtensorflow: report.native?.tensorflowVersion ?? null,
        fpmath: report.fpmath ?? null, torch: torchVersion, python: pythonVersion, torchThreads: side.skipped ? null : threads,
      },
      images: n,
    }));
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(`bench/vsPytorch: ${(e as Error).message}`);
    process.exit(1);
  });
}
