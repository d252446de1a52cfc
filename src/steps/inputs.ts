import { loadCifar10 } from '../data/cifar10';
import { loadNpd, LoadSummary } from '../data/npd';
import type { ExperimentConfig } from '../config';
import type { Run } from '../run';
import { discardLabels } from '../stolenLabels';
import type { BatchProgress, EpochRecord } from '../train';
import { ImageSet } from '../types';
import { subsetImages } from '../data/subset';
import { PoolSplit, unqueriedPool } from '../data/pool';

/** What every step reads from the run besides its own folder: the data sets and the caller's hooks. */

export interface StepHooks {
  onBatch?: (p: BatchProgress) => void;
  onEpoch?: (r: EpochRecord, h: EpochRecord[]) => void;
  log?: (line: string) => void;
  /** Stops training before the next batch once aborted (e.g. epochDeadline's); the checkpoint keeps the finished epochs. */
  signal?: AbortSignal;
  /** Start this step's variant afresh: its checkpoint and result are removed first (it says so). */
  force?: boolean;
}

export const stepLog = (hooks: { log?: (line: string) => void }): ((line: string) => void) => hooks.log ?? ((s: string) => console.log(s));

/** The CIFAR-10 train subset the oracle learns from and the test subset every model is scored on. */
export async function cifarForRun(run: Run): Promise<{ train: ImageSet; test: ImageSet }> {
  const { train: fullTrain, test: fullTest } = await loadCifar10();
  const d = run.config.data;
  return {
    train: subsetImages(fullTrain, d.oracleTrainImages, run.config.seed),
    test: subsetImages(fullTest, d.testImages, run.config.seed),
  };
}

/**
 * The test images scored after each epoch for the learning curves (config data.curveTestImages): on a
 * CPU, scoring all 10,000 every epoch costs the quick profile about a minute and a half.
 */
export function curveTestSet(run: Run, test: ImageSet): ImageSet {
  return subsetImages(test, run.config.data.curveTestImages, run.config.seed + 1);
}

/** How the curves name that set: 'test', or 'test (2000-image subset)'. */
export function curveTestLabel(data: Pick<ExperimentConfig['data'], 'curveTestImages' | 'testImages'>): string {
  const { curveTestImages: n, testImages } = data;
  return n == null || (testImages != null && n >= testImages) ? 'test' : `test (${n}-image subset)`;
}

/** A source of the config as loadNpd takes it (loadNpd validates the kind and names what it expects). */
type SourceJson = ExperimentConfig['data']['npdSource'];

/**
 * Images of an NPD source at the run's image size: the seeded subset of `maxImages` (prefix-stable: a larger
 * one holds a smaller one) or all of them; decoded once, then read from the uint8 cache.
 */
export function npdOfRun(run: Run, source: SourceJson, maxImages: number | undefined, log?: (s: string) => void): Promise<ImageSet & { summary: LoadSummary }> {
  return loadNpd(source as Parameters<typeof loadNpd>[0], { size: run.config.data.imageSize, maxImages, seed: run.config.seed, log });
}

/** The NPD images a run queries (data.npdImages of data.npdSource). */
export function npdForRun(run: Run, log?: (s: string) => void): Promise<ImageSet & { summary: LoadSummary }> {
  return npdOfRun(run, run.config.data.npdSource, run.config.data.npdImages ?? undefined, log);
}

/**
 * Problem-domain images for PD-SL: CIFAR-10 training images with their ground truth discarded before
 * the oracle sees them (the attacker only learns what the oracle answers).
 */
export async function pdForRun(run: Run): Promise<ImageSet> {
  const { train } = await cifarForRun(run);
  return discardLabels(subsetImages(train, run.config.data.pdImages, run.config.seed + 1));
}

/**
 * The pool's held-out slice as loaded (before images paid for are dropped: unqueriedPool does that), or
 * undefined when the run has no pool.
 */
export async function poolHeldOutForRun(run: Run, log?: (s: string) => void): Promise<ImageSet | undefined> {
  const p = run.config.data.pool;
  if (!p) return undefined;
  if (!Array.isArray(p.sources) || p.sources.length === 0) throw new Error('data.pool.sources: expected at least one NPD source, e.g. [{ "kind": "tiny-imagenet-rest20k" }] (or set data.pool to null)');
  if (!Number.isInteger(p.heldOutImages) || p.heldOutImages < 1) throw new Error(`data.pool.heldOutImages: expected an integer >= 1, got ${JSON.stringify(p.heldOutImages)}`);
  return npdOfRun(run, p.sources[0], p.heldOutImages, log);
}

/**
 * The run's unqueried pool (config data.pool; undefined when it has none): what the attacker holds
 * beyond the images in `queriedHashes` (every image sent to the oracle for the stolen sets used).
 * Each part is a prefix-stable seeded subset of its source, so the held-out slice does not move when
 * the pool's size or the query budget changes.
 */
export async function poolForRun(run: Run, queriedHashes: ReadonlySet<string>, log?: (s: string) => void): Promise<PoolSplit | undefined> {
  const d = run.config.data;
  const p = d.pool;
  const heldOut = await poolHeldOutForRun(run, log);
  if (!p || !heldOut) return undefined;
  const load = (source: SourceJson, maxImages: number | undefined) => npdOfRun(run, source, maxImages, log);
  const extra = [];
  let have = 0;
  for (const [i, source] of p.sources.entries()) {
    // The first source also holds the held-out slice: load that many more (the subset grows by prefix).
    const want = p.images == null ? undefined : p.images - have + (i === 0 ? p.heldOutImages : 0);
    if (want !== undefined && want <= 0) break;
    const set = await load(source, want);
    extra.push(set);
    have += set.n - (i === 0 ? heldOut.n : 0);
  }
  const needMore = p.images == null || have < p.images;
  // With npdImages null every image of the queried source was asked: none of it can be in the pool.
  const queriedSource = needMore && d.npdImages != null
    ? await load(d.npdSource, p.images == null ? undefined : d.npdImages + (p.images - have))
    : undefined;
  return unqueriedPool({ heldOut, extra, queriedSource, queriedHashes, images: p.images });
}
