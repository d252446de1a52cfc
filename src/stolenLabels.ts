import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from './io';
import { softTargetsOf, validateAnswer } from './oracle/answers';
import { costOf, QueryBudgetExceeded } from './oracle/budget';
import { imageHashes, QueryCache } from './oracle/cache';
import { partialAnswersOf } from './oracle/client';
import type { Oracle, OracleAnswer, OracleInfo } from './oracle/types';
import { progress as makeProgress, type ProgressOptions } from './display/progress';
import { CIFAR10_CLASSES, type ImageSet } from './types';

/**
 * The labeling job of the paper: stream unlabeled images through the black box and keep its answers as
 * "stolen labels". Every answer goes to the query cache (src/oracle/cache.ts) as its response arrives,
 * before it is used, and every request is recorded there before it is sent, so a killed job resumes
 * without paying for any image twice, and two sets that share images (NPD+PD-SL) share answers.
 */

export const STOLEN_FORMAT = 'copycat-stolen-labels';

export interface StolenLabelSet {
  format: typeof STOLEN_FORMAT;
  version: 1;
  /** e.g. 'NPD-SL', 'PD-SL'. */
  name: string;
  /** When the file was written. A later call that gets the same answers leaves the file as it is. */
  createdAt: string;
  oracle: Pick<OracleInfo, 'name' | 'kind' | 'answer' | 'numClasses' | 'classNames' | 'transforms' | 'pricePer1000'>;
  n: number;
  height: number;
  width: number;
  /** SHA-1 of each image's RGB bytes, in set order (the key into the query cache). */
  hashes: string[];
  ids?: string[];
  /** Stolen label per image. */
  labels: number[];
  /** Full answers when the mode revealed more than the label (topk / probabilities / rounded). */
  answers?: OracleAnswer[];
  queries: {
    /** Distinct images in the set: what obtaining it cost, whichever session paid. */
    distinct: number;
    /** Images asked during the call that wrote this file. */
    askedThisCall: number;
    /** Distinct images answered from the cache (earlier sessions or other sets). */
    fromCache: number;
    /** Images that repeat another image of the set (asked once). */
    duplicates: number;
  };
  cost: { usd: number; thisCallUsd: number; pricePer1000: number };
  cacheFile: string;
}

export interface LabelImagesOptions {
  /** The query cache (JSON lines). Default <runDir>/stolen/queries.jsonl. */
  cacheFile?: string;
  /** Run directory: the cache and the stolen-label file go under <runDir>/stolen/. */
  runDir?: string;
  /** Set name, used in the file name; default 'stolen'. */
  name?: string;
  /** Where the stolen-label set is written. Default <runDir>/stolen/<name>.json, or next to cacheFile. */
  outFile?: string;
  /** Images per oracle.query call (the unit of budget checks and of stopping; answers are stored per response); default 256. */
  batchSize?: number;
  onProgress?: (done: number, total: number, costUsd: number, etaSeconds: number) => void;
  /** Show the shared progress line (notebook/terminal/log); default true. false or options. */
  progress?: boolean | ProgressOptions;
  /**
   * Stops the job: no new request starts, requests in flight finish and their answers are stored, then
   * labelImages rejects with an AbortError (see stopOnSignals in src/oracle/stopSignals.ts for Ctrl-C).
   */
  signal?: AbortSignal;
  /**
   * Images this cache may have paid for in total, over every set and every run (answers in the cache
   * plus requests that may have been charged); recorded with the cache, so a rerun keeps it without
   * being told again. null lifts a recorded budget. Default: the oracle's own budget (info.budget) when
   * it has one, else the recorded one.
   */
  budget?: number | null;
  /** Older cache headers naming this same oracle (see OpenCacheOptions.sameOracleNames in src/oracle/cache.ts). */
  sameOracleNames?: readonly string[];
}

function resolvePaths(opts: LabelImagesOptions): { cacheFile: string; outFile: string } {
  const name = opts.name ?? 'stolen';
  if (!/^[A-Za-z0-9+._-]+$/.test(name)) throw new Error(`labelImages: name '${name}' must be a file-name-safe word (letters, digits, + . _ -)`);
  if (opts.cacheFile) {
    const cacheFile = path.resolve(opts.cacheFile);
    return { cacheFile, outFile: path.resolve(opts.outFile ?? path.join(path.dirname(cacheFile), `${name}.json`)) };
  }
  if (opts.runDir) {
    const dir = path.join(path.resolve(opts.runDir), 'stolen');
    return { cacheFile: path.join(dir, 'queries.jsonl'), outFile: path.resolve(opts.outFile ?? path.join(dir, `${name}.json`)) };
  }
  throw new Error('labelImages: pass opts.cacheFile or opts.runDir (where paid answers are kept)');
}

function abortError(signal: AbortSignal, done: number, total: number): Error {
  const e = new Error(`labelImages aborted after ${done} of ${total} images; answers so far are in the cache, run again to resume`);
  e.name = 'AbortError';
  (e as { cause?: unknown }).cause = signal.reason;
  return e;
}

/**
 * Labels every image of `images` with `oracle` (any Oracle) and writes the stolen-label set. Images
 * already in the cache are not asked again; duplicates inside `images` are asked once.
 *
 * Never paying twice: each request is written ahead to the cache's sidecar before it is sent, each
 * response's answers are appended and fsync'ed as it arrives (before anything uses them), and requests
 * a killed run left pending are resent first exactly as they were (same images, same derived
 * Idempotency-Key), so a server that honours keys replays them instead of charging again.
 */
export async function labelImages(oracle: Oracle, images: ImageSet, opts: LabelImagesOptions): Promise<StolenLabelSet> {
  const { cacheFile, outFile } = resolvePaths(opts);
  const { n, height, width } = images;
  const px = height * width * 3;
  if (images.images.length !== n * px) throw new Error(`labelImages: images has ${images.images.length} bytes, expected n*h*w*3 = ${n * px}`);
  if (images.ids && images.ids.length !== n) throw new Error(`labelImages: ids has ${images.ids.length} entries, expected n = ${n}`);
  const batchSize = opts.batchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`labelImages: batchSize must be an integer >= 1, got ${batchSize}`);

  const hashes = imageHashes(images.images, n, px);
  const cache = QueryCache.open(cacheFile, oracle.info, { height, width }, { sameOracleNames: opts.sameOracleNames });
  try {
    if (opts.budget !== undefined) cache.setBudget(opts.budget ?? undefined);
    else if (oracle.info.budget !== undefined) cache.setBudget(oracle.info.budget);
    const work = workList(cache, hashes);
    const { distinct, fromCache, resend, todo } = work;
    const total = todo.length + work.resendUnanswered;
    const price = oracle.info.pricePer1000;
    const bar = opts.progress === false ? undefined : makeProgress(total, { label: `oracle queries (${opts.name ?? 'stolen'})`, unit: 'img', ...(typeof opts.progress === 'object' ? opts.progress : {}) });
    const t0 = Date.now();
    let asked = 0;
    const report = (): void => {
      const secs = (Date.now() - t0) / 1000;
      const eta = asked > 0 ? ((total - asked) * secs) / asked : Infinity;
      opts.onProgress?.(asked, total, costOf(asked, price), eta);
      bar?.update(asked, { cost: `$${costOf(asked, price).toFixed(2)}`, cached: fromCache });
    };
    /** Asks images `idx` (one query), storing each response's answers as it arrives. */
    const ask = async (idx: number[], maxImagesPerRequest?: number): Promise<void> => {
      const store = (start: number, answers: (OracleAnswer | undefined)[]): void => {
        asked += cache.append(answers.flatMap((a, k) => (a ? [{ hash: hashes[idx[start + k]], answer: a }] : [])));
        report();
      };
      let answers: OracleAnswer[];
      try {
        answers = await oracle.query(gather(images, idx), {
          onRequests: (reqs) => cache.recordRequests(reqs.map((r) => ({ key: r.key, hashes: idx.slice(r.start, r.start + r.count).map((i) => hashes[i]) }))),
          onAnswers: store,
          stop: opts.signal,
          maxImagesPerRequest,
        });
      } catch (e) {
        // Answers that arrived before the failure were paid: keep them (an oracle without onAnswers
        // hands them over only here).
        const partial = partialAnswersOf(e);
        if (partial) store(0, partial);
        if (opts.signal?.aborted) throw abortError(opts.signal, asked, total);
        throw e;
      }
      if (answers.length !== idx.length) throw new Error(`labelImages: oracle returned ${answers.length} answers for ${idx.length} images`);
      store(0, answers); // a no-op for answers already stored from onAnswers
    };
    report();
    try {
      // Requests a killed run may have been charged for: the same requests again, so they are replayed.
      for (const group of resend) {
        if (opts.signal?.aborted) throw abortError(opts.signal, asked, total);
        await ask(group, group.length);
      }
      for (let b = 0; b < todo.length; b += batchSize) {
        if (opts.signal?.aborted) throw abortError(opts.signal, asked, total);
        let idx = todo.slice(b, b + batchSize);
        // Spend the budget (and a server's quota) to the last image, then stop with the standard error.
        const left = budgetLeft(oracle, cache);
        let budgetStop: QueryBudgetExceeded | undefined;
        if (left && left.images < idx.length) {
          const unlabeled = todo.length - b - left.images;
          budgetStop = new QueryBudgetExceeded(left.used + left.images, left.limit, idx.length - left.images, `${left.what} (${unlabeled} images of this set stay unlabeled; answers so far are cached)`);
          idx = idx.slice(0, left.images);
        }
        if (idx.length > 0) await ask(idx);
        if (budgetStop) throw budgetStop;
      }
    } finally {
      bar?.finish({ cost: `$${costOf(asked, price).toFixed(2)}`, cached: fromCache });
    }

    const labels = new Array<number>(n);
    const full: OracleAnswer[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const a = cache.get(hashes[i]);
      if (!a) throw new Error(`labelImages: internal error, no answer for image ${i} after labeling`);
      labels[i] = a.label;
      full[i] = a;
    }
    const info = oracle.info;
    const set: StolenLabelSet = {
      format: STOLEN_FORMAT,
      version: 1,
      name: opts.name ?? 'stolen',
      createdAt: new Date().toISOString(),
      oracle: {
        name: info.name,
        kind: info.kind,
        answer: info.answer,
        numClasses: info.numClasses,
        classNames: info.classNames,
        transforms: info.transforms,
        pricePer1000: info.pricePer1000,
      },
      n,
      height,
      width,
      hashes,
      ids: images.ids,
      labels,
      answers: info.answer.mode === 'label' ? undefined : full,
      queries: { distinct, askedThisCall: asked, fromCache, duplicates: n - distinct },
      cost: { usd: costOf(distinct, price), thisCallUsd: costOf(asked, price), pricePer1000: price },
      cacheFile,
    };
    // A rerun that gets the same answers (every step of a run relabels from the cache) keeps the file:
    // its record of the call that paid stays, and a packed run (src/run/archive.ts) stays in step.
    if (!sameAnswersOnDisk(outFile, set)) {
      fs.mkdirSync(path.dirname(outFile), { recursive: true });
      writeFileAtomic(outFile, JSON.stringify(set));
    }
    return set;
  } finally {
    cache.close();
  }
}

/**
 * What to ask: the first occurrence of each image not in the cache, minus the images of requests a
 * killed run left pending, which are resent as they were (groups of indices, in request order) when all
 * their images are in this set. A pending request with images outside this set stays pending for the
 * run that has them.
 */
function workList(cache: QueryCache, hashes: string[]): { distinct: number; fromCache: number; todo: number[]; resend: number[][]; resendUnanswered: number } {
  const first = new Map<string, number>();
  hashes.forEach((h, i) => {
    if (!first.has(h)) first.set(h, i);
  });
  const resend: number[][] = [];
  const inResend = new Set<string>();
  let resendUnanswered = 0;
  for (const r of cache.pendingRequests()) {
    if (!r.hashes.every((h) => first.has(h) && !inResend.has(h))) continue;
    resend.push(r.hashes.map((h) => first.get(h)!));
    for (const h of r.hashes) {
      inResend.add(h);
      if (!cache.has(h)) resendUnanswered++;
    }
  }
  const todo: number[] = [];
  let fromCache = 0;
  for (const [h, i] of first) {
    if (cache.has(h)) fromCache++;
    else if (!inResend.has(h)) todo.push(i);
  }
  return { distinct: first.size, fromCache, todo, resend, resendUnanswered };
}

/**
 * Images that may still be asked, and which limit binds: the budget recorded with the cache (answers
 * there plus pending requests count as spent), the oracle's own budget, a server's known quota.
 */
function budgetLeft(oracle: Oracle, cache: QueryCache): { images: number; used: number; limit: number; what: string } | undefined {
  const spent = cache.size + cache.pendingImages();
  const limits: { images: number; used: number; limit: number; what: string }[] = [];
  if (cache.budget !== undefined) limits.push({ images: Math.max(0, cache.budget - spent), used: spent, limit: cache.budget, what: 'query budget recorded with the cache' });
  const st = oracle.stats();
  if (st.remaining !== undefined) limits.push({ images: Math.max(0, st.remaining), used: st.queries, limit: st.budget ?? st.queries + st.remaining, what: 'query budget' });
  if (st.quotaRemaining !== undefined) limits.push({ images: Math.max(0, st.quotaRemaining), used: st.queries, limit: st.queries + st.quotaRemaining, what: 'server quota for this API key' });
  return limits.sort((x, y) => x.images - y.images)[0];
}

/** The parts of a stolen-label set that do not depend on which call wrote it. */
function answersOf(s: StolenLabelSet): unknown {
  const { createdAt: _c, cacheFile: _f, queries, cost, ...rest } = s;
  return { ...rest, queries: { distinct: queries.distinct, duplicates: queries.duplicates }, cost: { usd: cost.usd, pricePer1000: cost.pricePer1000 } };
}

function sameAnswersOnDisk(file: string, set: StolenLabelSet): boolean {
  if (!fs.existsSync(file)) return false;
  try {
    return JSON.stringify(answersOf(JSON.parse(fs.readFileSync(file, 'utf8')))) === JSON.stringify(answersOf(set));
  } catch {
    return false; // unreadable or another shape: rewrite it
  }
}

/** Copies images `idx` of `set` into a new, contiguous ImageSet (no labels). */
function gather(set: ImageSet, idx: number[]): ImageSet {
  const px = set.height * set.width * 3;
  const out = new Uint8Array(idx.length * px);
  idx.forEach((i, k) => out.set(set.images.subarray(i * px, (i + 1) * px), k * px));
  return { images: out, n: idx.length, height: set.height, width: set.width };
}

/** Reads a stolen-label set written by labelImages, checking its shape (errors name the file and field). */
export function loadStolenLabels(file: string): StolenLabelSet {
  if (!fs.existsSync(file)) throw new Error(`loadStolenLabels: ${file} not found (run the labeling step first)`);
  let s: StolenLabelSet;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`loadStolenLabels: ${file} is not valid JSON (${(e as Error).message})`);
  }
  const bad = (field: string, want: string): never => {
    throw new Error(`loadStolenLabels: ${file}: field '${field}' ${want}`);
  };
  if (s?.format !== STOLEN_FORMAT) bad('format', `must be '${STOLEN_FORMAT}'`);
  if (s.version !== 1) bad('version', 'must be 1');
  if (!Number.isInteger(s.n) || s.n < 0) bad('n', 'must be an integer >= 0');
  if (!(s.height > 0 && s.width > 0)) bad('height/width', 'must be positive');
  if (!s.oracle || !Number.isInteger(s.oracle.numClasses)) bad('oracle.numClasses', 'must be an integer');
  if (!Array.isArray(s.hashes) || s.hashes.length !== s.n) bad('hashes', `must be an array of n=${s.n} SHA-1 strings`);
  if (!Array.isArray(s.labels) || s.labels.length !== s.n) bad('labels', `must be an array of n=${s.n} class indices`);
  s.labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= s.oracle.numClasses) bad(`labels[${i}]`, `must be an integer in 0..${s.oracle.numClasses - 1}, got ${l}`);
  });
  if (s.ids !== undefined && (!Array.isArray(s.ids) || s.ids.length !== s.n)) bad('ids', `must be absent or an array of n=${s.n} strings`);
  if (s.answers !== undefined) {
    if (!Array.isArray(s.answers) || s.answers.length !== s.n) bad('answers', `must be absent or an array of n=${s.n} answers`);
    s.answers.forEach((a, i) => validateAnswer(a, s.oracle.answer, s.oracle.numClasses, `loadStolenLabels: ${file}: answers[${i}]`));
  }
  return s;
}

export interface StolenImageSetOptions {
  /** Recompute the image hashes and compare (default true): catches a different or reordered image set. */
  verify?: boolean;
}

/**
 * The images with their stolen labels (and soft targets when the mode gave probabilities or top-k):
 * the copycat's training set. `images` must be the set that was labeled, in the same order.
 */
export function stolenImageSet(images: ImageSet, stolen: StolenLabelSet, opts: StolenImageSetOptions = {}): ImageSet {
  if (images.n !== stolen.n || images.height !== stolen.height || images.width !== stolen.width) {
    throw new Error(`stolenImageSet: images are ${images.n} x ${images.height}x${images.width}, the stolen labels '${stolen.name}' are for ${stolen.n} x ${stolen.height}x${stolen.width}`);
  }
  if (opts.verify ?? true) {
    const px = images.height * images.width * 3;
    const h = imageHashes(images.images, images.n, px);
    const i = h.findIndex((v, k) => v !== stolen.hashes[k]);
    if (i >= 0) throw new Error(`stolenImageSet: image ${i} differs from the one labeled in '${stolen.name}' (hash ${h[i]} vs ${stolen.hashes[i]}); pass the same images in the same order`);
  }
  const c = stolen.oracle.numClasses;
  let soft: Float32Array | undefined;
  if (stolen.answers && stolen.answers.some((a) => a.probs || a.topk)) {
    soft = new Float32Array(stolen.n * c);
    stolen.answers.forEach((a, i) => soft!.set(softTargetsOf(a, c) ?? oneHot(a.label, c), i * c));
  }
  return {
    images: images.images,
    n: images.n,
    height: images.height,
    width: images.width,
    labels: Uint8Array.from(stolen.labels),
    ...(soft ? { soft } : {}),
    ...(images.ids ? { ids: images.ids } : {}),
  };
}

function oneHot(label: number, c: number): Float32Array {
  const r = new Float32Array(c);
  r[label] = 1;
  return r;
}

// ---- the paper's three training sets ------------------------------------------------------------------

/** The same images without ground truth: what the attacker may show the oracle for PD-SL. */
export function discardLabels(set: ImageSet): ImageSet {
  return { images: set.images, n: set.n, height: set.height, width: set.width, ...(set.ids ? { ids: set.ids } : {}) };
}

/** Concatenates image sets of the same size; labels/soft/ids are kept only when every part has them. */
export function concatImageSets(...sets: ImageSet[]): ImageSet {
  if (sets.length === 0) throw new Error('concatImageSets: nothing to concatenate');
  const { height, width } = sets[0];
  sets.forEach((s, i) => {
    if (s.height !== height || s.width !== width) throw new Error(`concatImageSets: set ${i} is ${s.height}x${s.width}, set 0 is ${height}x${width}`);
  });
  const n = sets.reduce((a, s) => a + s.n, 0);
  const images = new Uint8Array(n * height * width * 3);
  let off = 0;
  for (const s of sets) {
    images.set(s.images.subarray(0, s.n * height * width * 3), off);
    off += s.n * height * width * 3;
  }
  const out: ImageSet = { images, n, height, width };
  if (sets.every((s) => s.labels)) {
    out.labels = new Uint8Array(n);
    let o = 0;
    for (const s of sets) {
      out.labels.set(s.labels!.subarray(0, s.n), o);
      o += s.n;
    }
  }
  if (sets.every((s) => s.soft)) {
    const c = sets[0].soft!.length / sets[0].n;
    if (sets.some((s) => s.soft!.length !== s.n * c)) throw new Error('concatImageSets: soft targets have different class counts');
    out.soft = new Float32Array(n * c);
    let o = 0;
    for (const s of sets) {
      out.soft.set(s.soft!, o);
      o += s.soft!.length;
    }
  }
  if (sets.every((s) => s.ids)) out.ids = sets.flatMap((s) => s.ids!);
  return out;
}

export interface StolenTrainingSet {
  /** Images with stolen labels (and soft targets if the mode gave them). */
  set: ImageSet;
  stolen: StolenLabelSet;
}

type BuildOptions = Omit<LabelImagesOptions, 'name'>;

/** NPD-SL: natural non-problem-domain images labeled by the oracle (the paper's main attack). */
export async function buildNpdSl(oracle: Oracle, npd: ImageSet, opts: BuildOptions): Promise<StolenTrainingSet> {
  const unlabeled = discardLabels(npd);
  const stolen = await labelImages(oracle, unlabeled, { ...opts, name: 'NPD-SL' });
  return { set: stolenImageSet(unlabeled, stolen, { verify: false }), stolen };
}

/** PD-SL: problem-domain images (CIFAR-10 train) whose ground truth is discarded before querying. */
export async function buildPdSl(oracle: Oracle, pd: ImageSet, opts: BuildOptions): Promise<StolenTrainingSet> {
  const unlabeled = discardLabels(pd);
  const stolen = await labelImages(oracle, unlabeled, { ...opts, name: 'PD-SL' });
  return { set: stolenImageSet(unlabeled, stolen, { verify: false }), stolen };
}

/** NPD+PD-SL: both stolen sets together (answers come from the shared cache; nothing is asked twice). */
export function buildNpdPdSl(npdSl: StolenTrainingSet, pdSl: StolenTrainingSet): ImageSet {
  return concatImageSets(npdSl.set, pdSl.set);
}

// ---- label statistics -------------------------------------------------------------------------------

/** A stolen set as a run reports it (its variant's result.json): size, cost and how its labels fall. */
export interface StolenSetSummary {
  n: number;
  /** Distinct images in the set: what obtaining it cost, whichever call paid. */
  queries: number;
  /** Images the call that made the set asked (0 for a set taken in from elsewhere). */
  askedThisCall: number;
  costUsd: number;
  histogram: LabelHistogram;
  /** The set's file, relative to the run folder. */
  file: string;
  /** The stolen set's variant key (src/steps/variants.ts). */
  key: string;
}

export function stolenSetSummary(s: StolenLabelSet, file: string, key: string, askedThisCall = s.queries.askedThisCall): StolenSetSummary {
  return { n: s.n, queries: s.queries.distinct, askedThisCall, costUsd: s.cost.usd, histogram: labelHistogram(s.labels, s.oracle.classNames ?? CIFAR10_CLASSES), file, key };
}

export interface LabelHistogram {
  total: number;
  rows: { label: number; name: string; count: number; fraction: number }[];
  /** Most frequent over least frequent class count (Infinity when a class never occurs). */
  maxOverMin: number;
}

/** Stolen labels per class: the paper notes NPD images pile up on a few classes. */
export function labelHistogram(labels: ArrayLike<number>, classNames: readonly string[]): LabelHistogram {
  const counts = new Array<number>(classNames.length).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classNames.length) {
      throw new Error(`labelHistogram: labels[${i}] = ${l} is not a class index in 0..${classNames.length - 1}`);
    }
    counts[l]++;
  }
  const total = labels.length;
  const max = Math.max(...counts);
  const min = Math.min(...counts);
  return {
    total,
    rows: counts.map((count, label) => ({ label, name: classNames[label], count, fraction: total ? count / total : 0 })),
    maxOverMin: min > 0 ? max / min : max > 0 ? Infinity : 1,
  };
}
