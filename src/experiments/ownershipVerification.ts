import * as fs from 'fs';
import * as path from 'path';
import { backendReport } from '../platform/backend';
import { Fingerprint, makeFingerprint, naturalFingerprint, rocAuc, scoreSuspect } from '../defender/ownership';
import { loadModel, saveModel } from '../io';
import { ArchitectureName, createModel } from '../models';
import { readJson, Run, variantFolders, variantPaths, writeJson } from '../run';
import { cifarForRun, poolHeldOutForRun } from '../steps/inputs';
import { loadOracleModel } from '../steps/oracleStep';
import { scaleSchedule } from '../train/schedule';
import { resolveTrainConfig, train } from '../train';
import { evaluateModel } from '../evaluate';
import { subsetImages } from '../data/subset';

/**
 * Issue 53, verification: does a label-only fingerprint tell the run's copycats (positives) from models
 * trained independently on CIFAR-10 (negatives: other seeds and architectures, trained here with the
 * oracle's recipe at `negativeEpochs`)? Reports each model's score per number of queries and the ROC AUC.
 */

export interface VerificationModel {
  name: string;
  kind: 'copy' | 'independent';
  dir: string;
  /** CIFAR-10 test accuracy (so a negative is not just a weak model). */
  accuracy: number;
  /** Score per fingerprint and query count, e.g. scores.adversarial['1000']. */
  scores: Record<string, Record<string, number>>;
}

export interface VerificationResult {
  fingerprints: { name: string; images: number; epsilon: number }[];
  models: VerificationModel[];
  /** AUC per fingerprint and query count. */
  auc: Record<string, Record<string, number>>;
  backend: string;
}

export interface VerificationOptions {
  /** Independent models: architecture and seed each (default four). */
  negatives?: { architecture: ArchitectureName; seed: number }[];
  /** Epochs of each independent model (the oracle's recipe scaled; default a third of the oracle's). */
  negativeEpochs?: number;
  /** Extra saved copy models (directories) besides the run's copycat variants. */
  positives?: string[];
  queryCounts?: number[];
  fingerprintImages?: number;
  log?: (s: string) => void;
}

export const DEFAULT_NEGATIVES: { architecture: ArchitectureName; seed: number }[] = [
  { architecture: 'resnet-9', seed: 2 }, { architecture: 'resnet-9', seed: 3 },
  { architecture: 'vgg-small-bn', seed: 4 }, { architecture: 'resnet-9w32', seed: 5 },
];

/** An independent CIFAR-10 model (true labels, the oracle's recipe), trained once and kept under the run. */
async function independentModel(run: Run, a: ArchitectureName, seed: number, epochs: number, log: (s: string) => void): Promise<{ dir: string; accuracy: number }> {
  const dir = run.path('experiments', 'verify', 'independent', `${a}-s${seed}-e${epochs}`);
  const result = path.join(dir, 'result.json');
  if (fs.existsSync(result)) return { dir: path.join(dir, 'model'), accuracy: readJson<{ accuracy: number }>(result, 'independent model').accuracy };
  const { train: data, test } = await cifarForRun(run);
  const model = createModel(a, { seed: seed + 1000 });
  try {
    log(`verify: training an independent ${a} (seed ${seed}, ${epochs} epochs) on CIFAR-10`);
    const recipe = resolveTrainConfig(run.config.oracle.train);
    const cfg = { ...run.config.oracle.train, epochs, schedule: scaleSchedule(recipe.schedule, recipe.epochs, epochs), seed };
    await train(model, data, cfg, { checkpointDir: path.join(dir, 'checkpoints'), log });
    await saveModel(model, path.join(dir, 'model'));
    const accuracy = (await evaluateModel(model, test)).metrics.accuracy;
    writeJson(result, { architecture: a, seed, epochs, accuracy });
    fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
    return { dir: path.join(dir, 'model'), accuracy };
  } finally {
    model.dispose();
  }
}

export async function ownershipVerification(run: Run, opts: VerificationOptions = {}): Promise<VerificationResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const { test } = await cifarForRun(run);
  // At most half the test images: PGD does not move every image across the oracle's boundary.
  const n = opts.fingerprintImages ?? Math.min(Math.max(...(opts.queryCounts ?? [1000])), Math.floor(test.n / 2));
  const counts = (opts.queryCounts ?? [100, 250, 500, 1000]).filter((c) => c <= n);
  const oracle = await loadOracleModel(run);
  const fps: { name: string; fp: Fingerprint }[] = [];
  try {
    // Base images the owner has: its test set, in a seeded order.
    fps.push({ name: 'adversarial', fp: await makeFingerprint(oracle, subsetImages(test, Math.min(test.n, 4 * n), run.config.seed + 53), { n }) });
    // Only the pool's held-out slice: no copy of the run trained on it.
    const heldOut = await poolHeldOutForRun(run);
    if (heldOut && heldOut.n > 0) fps.push({ name: 'natural (held-out NPD)', fp: await naturalFingerprint(oracle, heldOut) });
  } finally {
    oracle.dispose();
  }
  const models: VerificationModel[] = [];
  const copyDirs = [
    ...variantFolders(run).filter((v) => v.kind === 'copycat').map((v) => variantPaths(v.dir)).filter((p) => fs.existsSync(path.join(p.model, 'model.json'))).map((p) => ({ name: path.relative(run.dir, p.dir), dir: p.model })),
    ...(opts.positives ?? []).map((d) => ({ name: d, dir: d })),
  ];
  const score = async (name: string, kind: VerificationModel['kind'], dir: string, accuracy?: number) => {
    const m = await loadModel(dir);
    try {
      const acc = accuracy ?? (await evaluateModel(m, test)).metrics.accuracy;
      const scores: VerificationModel['scores'] = {};
      for (const { name: f, fp } of fps) {
        scores[f] = {};
        for (const c of counts) if (c <= fp.images.n) scores[f][String(c)] = (await scoreSuspect(m, fp, c)).score;
      }
      models.push({ name, kind, dir, accuracy: acc, scores });
      log(`verify: ${kind} ${name}: ${JSON.stringify(scores)}`);
    } finally {
      m.dispose();
    }
  };
  for (const c of copyDirs) await score(c.name, 'copy', c.dir);
  for (const neg of opts.negatives ?? DEFAULT_NEGATIVES) {
    const epochs = opts.negativeEpochs ?? Math.max(1, Math.round(resolveTrainConfig(run.config.oracle.train).epochs / 3));
    const m = await independentModel(run, neg.architecture, neg.seed, epochs, log);
    await score(`independent ${neg.architecture} seed ${neg.seed}`, 'independent', m.dir, m.accuracy);
  }
  const auc: VerificationResult['auc'] = {};
  for (const { name: f } of fps) {
    auc[f] = {};
    for (const c of counts.map(String)) {
      const pos = models.filter((m) => m.kind === 'copy' && m.scores[f][c] !== undefined).map((m) => m.scores[f][c]);
      const neg = models.filter((m) => m.kind === 'independent' && m.scores[f][c] !== undefined).map((m) => m.scores[f][c]);
      if (pos.length && neg.length) auc[f][c] = rocAuc(pos, neg);
    }
  }
  return { fingerprints: fps.map((f) => ({ name: f.name, images: f.fp.images.n, epsilon: f.fp.epsilon })), models, auc, backend: backendReport().label };
}
