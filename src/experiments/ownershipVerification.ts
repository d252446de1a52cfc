import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import { backendReport } from '../platform/backend';
import { conferrableFingerprint, Fingerprint, makeFingerprint, naturalFingerprint, rocAuc, scoreSuspect } from '../defender/ownership';
import { loadModel, saveModel } from '../io';
import { ArchitectureName, createModel } from '../models';
import { readJson, Run, variantFolders, variantPaths, writeJson } from '../run';
import { cifarForRun, poolForRun, poolHeldOutForRun } from '../steps/inputs';
import { fitCopycat, queriedHashes } from '../steps/copycatStep';
import { argmaxRows, predictProbabilities } from '../preprocess';
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
  /** The owner's own models behind the conferrable fingerprint (none of them is scored). */
  owner: { references: { name: string; accuracy: number }[]; surrogates: { name: string; accuracy: number; agreement: number; images: number }[] };
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
  /**
   * The owner's reference models for the conferrable fingerprint: trained independently like the negatives,
   * with other seeds, so no negative is one the fingerprint was made against (default DEFAULT_REFERENCES).
   */
  references?: { architecture: ArchitectureName; seed: number }[];
  /** Seeds of the owner's surrogate copies: the run's copycat recipe on the oracle's answers to the pool (default [31, 32]). */
  surrogateSeeds?: number[];
  /** L-infinity radius of the conferrable fingerprint, in pixel levels of 255 (default 16). */
  conferrableEpsilon?: number;
  log?: (s: string) => void;
}

export const DEFAULT_NEGATIVES: { architecture: ArchitectureName; seed: number }[] = [
  { architecture: 'resnet-9', seed: 2 }, { architecture: 'resnet-9', seed: 3 },
  { architecture: 'vgg-small-bn', seed: 4 }, { architecture: 'resnet-9w32', seed: 5 },
];

/** The owner's reference models: independent like the negatives, seeds apart from theirs. */
export const DEFAULT_REFERENCES: { architecture: ArchitectureName; seed: number }[] = [
  { architecture: 'resnet-9', seed: 21 }, { architecture: 'vgg-small-bn', seed: 22 },
];

/**
 * One of the owner's surrogate copies: the owner plays the Copycat attacker against its own oracle, with
 * natural images no evaluated copy bought (the run's unqueried pool; semi-supervised copies saw them without
 * labels) and the oracle's hard labels, trained with the run's copycat recipe. Kept under the run.
 */
async function surrogateCopy(run: Run, seed: number, log: (s: string) => void): Promise<{ dir: string; accuracy: number; agreement: number; images: number }> {
  const dir = run.path('experiments', 'verify', 'owner', `surrogate-s${seed}`);
  const result = path.join(dir, 'result.json');
  if (fs.existsSync(result)) return { dir: path.join(dir, 'model'), ...readJson<{ accuracy: number; agreement: number; images: number }>(result, 'surrogate copy') };
  const pool = await poolForRun(run, queriedHashes(run), log);
  if (!pool || pool.train.n === 0) throw new Error('verify: the conferrable fingerprint needs the run\'s unqueried pool (config data.pool) for the owner\'s surrogate copies');
  const oracle = await loadOracleModel(run);
  let labels: Uint8Array;
  try {
    labels = argmaxRows(await predictProbabilities(oracle, pool.train), oracle.outputs[0].shape[1] as number);
  } finally {
    oracle.dispose();
  }
  const fit = await fitCopycat(run, { ...pool.train, labels, soft: undefined }, dir, { label: `verify: owner's surrogate copy (seed ${seed})`, seed, hooks: { log } });
  const r = { accuracy: fit.metrics.accuracy, agreement: fit.agreement, images: pool.train.n };
  writeJson(result, { seed, ...r });
  fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
  return { dir: path.join(dir, 'model'), ...r };
}

/** An independent CIFAR-10 model (true labels, the oracle's recipe), trained once and kept under the run. */
async function independentModel(run: Run, a: ArchitectureName, seed: number, epochs: number, log: (s: string) => void, folder = 'independent'): Promise<{ dir: string; accuracy: number }> {
  const dir = run.path('experiments', 'verify', folder, `${a}-s${seed}-e${epochs}`);
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
  if (!run.config.data.pool) throw new Error('verify: the conferrable fingerprint needs the run\'s unqueried pool (config data.pool): the owner\'s surrogate copies learn from it');
  const negativeEpochs = opts.negativeEpochs ?? Math.max(1, Math.round(resolveTrainConfig(run.config.oracle.train).epochs / 3));
  // The owner's own models first (trained once, kept): references and surrogate copies.
  const refSpecs = opts.references ?? DEFAULT_REFERENCES;
  const negSpecs = opts.negatives ?? DEFAULT_NEGATIVES;
  const clash = refSpecs.find((r) => negSpecs.some((q) => q.architecture === r.architecture && q.seed === r.seed));
  // A negative the fingerprint was made against would be judged by its own training: the AUC would flatter.
  if (clash) throw new Error(`verify: ${clash.architecture} seed ${clash.seed} is both a reference (--references) and a negative (--negatives); give it another seed`);
  const refs: { name: string; dir: string; accuracy: number }[] = [];
  for (const r of refSpecs) refs.push({ name: `${r.architecture} seed ${r.seed}`, ...(await independentModel(run, r.architecture, r.seed, negativeEpochs, log, 'owner')) });
  const surrs: { name: string; dir: string; accuracy: number; agreement: number; images: number }[] = [];
  for (const seed of opts.surrogateSeeds ?? [31, 32]) surrs.push({ name: `surrogate copy seed ${seed}`, ...(await surrogateCopy(run, seed, log)) });
  const oracle = await loadOracleModel(run);
  const fps: { name: string; fp: Fingerprint }[] = [];
  const ownerModels: tf.LayersModel[] = [];
  try {
    // Base images the owner has: its test set, in a seeded order.
    fps.push({ name: 'adversarial', fp: await makeFingerprint(oracle, subsetImages(test, Math.min(test.n, 4 * n), run.config.seed + 53), { n }) });
    for (const m of [...surrs, ...refs]) ownerModels.push(await loadModel(m.dir));
    const eps = opts.conferrableEpsilon ?? 16;
    fps.push({
      name: 'conferrable',
      // All test images in a seeded order: the search stops at n, but fewer images may qualify than for plain PGD.
      fp: await conferrableFingerprint(oracle, subsetImages(test, test.n, run.config.seed + 54), {
        n, minimum: Math.min(...counts), epsilon: eps, surrogates: ownerModels.slice(0, surrs.length), references: ownerModels.slice(surrs.length), seed: run.config.seed,
      }),
    });
    // Only the pool's held-out slice: no copy of the run trained on it.
    const heldOut = await poolHeldOutForRun(run);
    if (heldOut && heldOut.n > 0) fps.push({ name: 'natural (held-out NPD)', fp: await naturalFingerprint(oracle, heldOut) });
  } finally {
    oracle.dispose();
    ownerModels.forEach((m) => m.dispose());
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
  for (const neg of negSpecs) {
    const m = await independentModel(run, neg.architecture, neg.seed, negativeEpochs, log);
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
  return {
    fingerprints: fps.map((f) => ({ name: f.name, images: f.fp.images.n, epsilon: f.fp.epsilon })),
    owner: { references: refs.map(({ name, accuracy }) => ({ name, accuracy })), surrogates: surrs.map(({ name, accuracy, agreement, images }) => ({ name, accuracy, agreement, images })) },
    models, auc, backend: backendReport().label,
  };
}
