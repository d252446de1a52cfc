import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { loadNpd, type NpdOptions } from './data/npd';
import { pickImages } from './data/split';
import { NPD_SOURCE_KINDS, validateNpdSource, type NpdSource } from './data/npdSources';
import type { ProgressOptions } from './display/progress';
import { writeFileAtomic } from './io';
import { AdapterOracle } from './oracle/adapter';
import { formatAnswerSpec, normalizeAnswerSpec } from './oracle/answers';
import { QueryBudgetExceeded } from './oracle/budget';
import { imageHashes, QueryCache } from './oracle/cache';
import { HttpOracle } from './oracle/client';
import { mirrorDir } from './paths';
import type { Oracle, OracleInfo } from './oracle/types';
import { discardLabels, labelImages, loadStolenLabels, stolenImageSet, type StolenLabelSet } from './stolenLabels';
import { CIFAR10_CLASSES, type ImageSet } from './types';

/**
 * `npm run steal` as a library: label NPD images against any oracle (a local model folder, a server
 * speaking docs/oracle-api.md, or an outside API through an adapter file) and write a stolen-label set
 * the copycat can be trained on, without a run folder. docs/steal.md.
 *
 * The file written is a normal stolen-label set (loadStolenLabels reads it) plus a record of where the
 * images came from (`npd`), so a later step can load the same images again and pair them with the labels
 * (loadStolenSetWithImages), and of the images the outside API answered with a class the adapter's map
 * leaves out (`unmapped`): those were paid for but are not in the set.
 */

/** The mirror's second Tiny ImageNet zip (../shared/datasets/README.md): 20,000 images not in the 80k one. */
export const TINY_IMAGENET_REST_FILE = 'tiny-imagenet-200-train-rest20k.zip';

const SOURCE_HELP = `a folder, a .zip, folder:<path>, zip:<path>, tiny-imagenet, tiny-imagenet-rest20k, coco-val2017 or coco-train2014`;

/** `--source` text to an NpdSource: the named data sets, or a path (folder or zip). */
export function parseSourceSpec(spec: string, opts: { mirrorDir?: string } = {}): NpdSource {
  const s = spec.trim();
  if (!s) throw new Error(`--source: empty; expected ${SOURCE_HELP}`);
  if (s === 'tiny-imagenet-rest20k') {
    const mirror = opts.mirrorDir ?? mirrorDir();
    const file = mirror ? path.join(mirror, TINY_IMAGENET_REST_FILE) : undefined;
    if (!file || !fs.existsSync(file)) {
      throw new Error(`--source tiny-imagenet-rest20k: ${TINY_IMAGENET_REST_FILE} not found ${mirror ? `in ${mirror}` : '($COPYCAT_MIRROR_DIR is not set)'}; pass its path as --source instead`);
    }
    return { kind: 'zip', path: file };
  }
  if ((NPD_SOURCE_KINDS as readonly string[]).includes(s) && s !== 'folder' && s !== 'zip') return validateNpdSource({ kind: s });
  const m = /^(folder|zip):(.+)$/.exec(s);
  if (m) return validateNpdSource({ kind: m[1], path: path.resolve(m[2]) });
  let st: fs.Stats;
  try {
    st = fs.statSync(s);
  } catch {
    throw new Error(`--source '${spec}': no such file or folder; expected ${SOURCE_HELP}`);
  }
  return st.isDirectory() ? { kind: 'folder', path: path.resolve(s) } : { kind: 'zip', path: path.resolve(s) };
}

export type OracleSpec = { kind: 'local'; dir: string } | { kind: 'http'; url: string } | { kind: 'adapter'; file: string };

/** `--oracle` text: local:<modelDir>, http:<url> (or a bare http(s):// URL), adapter:<file.json>. */
export function parseOracleSpec(spec: string): OracleSpec {
  const s = spec.trim();
  if (/^https?:\/\//.test(s)) return { kind: 'http', url: s };
  const m = /^(local|http|adapter):(.+)$/.exec(s);
  if (!m) throw new Error(`--oracle '${spec}': expected local:<modelDir>, http:<url> or adapter:<file.json>`);
  if (m[1] === 'local') return { kind: 'local', dir: m[2] };
  if (m[1] === 'adapter') return { kind: 'adapter', file: m[2] };
  if (!/^https?:\/\//.test(m[2])) throw new Error(`--oracle '${spec}': http: needs a URL starting with http:// or https://`);
  return { kind: 'http', url: m[2] };
}

/** What `npm run steal` adds to a stolen-label set. */
export interface StealRecord {
  /** How to load the same images again (loadStolenSetWithImages). */
  npd: {
    spec: string;
    source: NpdSource;
    label: string;
    size: number;
    maxImages?: number;
    seed: number;
    /** Images the load gave (labeled + unmapped + any left unlabeled by the budget). */
    decoded: number;
  };
  /** Images whose API answer the adapter's class map leaves out: paid, counted, not in the set. */
  unmapped: { count: number; names: Record<string, number>; ids?: string[] };
  steal: {
    /** False when the budget ran out: the set holds the images labeled so far. */
    complete: boolean;
    /** Distinct images not labeled because of the budget. */
    unlabeled: number;
    /** labelImages' own file: every image asked, the unmapped marker included. */
    allFile: string;
    /** The adapter's raw store of API answers (adapter oracles only). */
    apiAnswersFile?: string;
  };
}

export type OutsideStolenSet = StolenLabelSet & StealRecord;

export interface StealOptions {
  /** --source text (parseSourceSpec) or an NpdSource. */
  source: string | NpdSource;
  /** --oracle text (parseOracleSpec) or a ready Oracle (then budget, rate... are the caller's). */
  oracle: string | Oracle;
  /** The stolen-label set to write (.json); its caches go next to it. */
  out: string;
  images?: number;
  seed?: number;
  /** Image size labeled and stored; default 32 (what the copycat trains on). */
  size?: number;
  /**
   * Images this output's cache may have paid for in total, over every run (recorded with the cache, so
   * a rerun keeps it); null lifts a recorded one. labelImages spends it to the last image.
   */
  budget?: number | null;
  concurrency?: number;
  ratePerMinute?: number;
  pricePer1000?: number;
  /** label (default) | topk:<k> | probabilities (| rounded:<d> for local and http). */
  answer?: string;
  /** Environment variable holding the API key (http; for adapters it overrides auth.env). */
  keyEnv?: string;
  timeoutMs?: number;
  /** Set name inside the file; default NPD-SL. */
  name?: string;
  /** Images per labelImages batch (and cache flush); default 256. */
  batchSize?: number;
  /** Stops new requests; requests in flight finish and are stored; a rerun resumes (stopOnSignals). */
  signal?: AbortSignal;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  progress?: boolean | ProgressOptions;
  /** Passed to loadNpd (dataDir, mirrorDir, cacheDir, offline...). */
  npd?: Omit<NpdOptions, 'maxImages' | 'seed' | 'size' | 'log'>;
}

export interface StealSummary {
  out: string;
  source: string;
  oracle: string;
  kind: string;
  answer: string;
  /** Images loaded from the source. */
  images: number;
  /** Images with an answer (kept + unmapped). */
  labeled: number;
  /** Images in the stolen set. */
  kept: number;
  unmapped: number;
  /** Most frequent unmapped API class names (adapter only). */
  unmappedNames: Record<string, number>;
  /** Images paid for by this call (the oracle's count; cached answers are free). */
  queries: number;
  requests: number;
  throttled: number;
  failedAttempts: number;
  /** Distinct images answered from earlier calls (query cache or the adapter's raw store). */
  fromCache: number;
  /** US$ spent by this call. */
  cost: number;
  /** US$ the whole set cost, whichever call paid (distinct images asked x price, unmapped included). */
  totalCost: number;
  complete: boolean;
  unlabeled: number;
}

function stemOf(out: string): string {
  return path.resolve(out).replace(/\.json$/i, '');
}

/** The adapter's raw store of API answers, next to the stolen set. */
function apiAnswersFileOf(out: string): string {
  return `${stemOf(out)}.api-answers.jsonl`;
}

/** The files next to `out`: the stolen set, labelImages' cache and file, the adapter's raw store. */
export function stealFiles(out: string, info: OracleInfo): { out: string; cacheFile: string; allFile: string; apiAnswersFile: string } {
  const stem = stemOf(out);
  // One cache per oracle identity and mode: a changed class map or mode gets its own file instead of
  // a "belongs to another oracle setting" error, and the old answers stay for going back.
  const id = crypto.createHash('sha256')
    .update(JSON.stringify(info.identity ?? { name: info.name, kind: info.kind, answer: normalizeAnswerSpec(info.answer), numClasses: info.numClasses, transforms: info.transforms ?? [] }))
    .digest('hex').slice(0, 10);
  return { out: path.resolve(out), cacheFile: `${stem}.answers-${id}.jsonl`, allFile: `${stem}.all.json`, apiAnswersFile: apiAnswersFileOf(out) };
}

function readKey(envName: string, env: NodeJS.ProcessEnv, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) throw new Error(`--key-env '${envName}': expected the NAME of an environment variable, not a key`);
  const key = env[envName];
  if (!key) throw new Error(`${what}: the API key is read from environment variable ${envName}, which is not set (export it, or name another with --key-env; keys never go on the command line)`);
  return key;
}

/** The oracle of an --oracle spec; `close` frees what it holds. */
export async function openOracle(spec: OracleSpec, o: StealOptions & { rawStoreFile?: string }): Promise<{ oracle: Oracle; close: () => void }> {
  const env = o.env ?? process.env;
  if (spec.kind === 'adapter') {
    // The budget and the stop signal are labelImages' (recorded with the cache; QueryOptions.stop).
    const oracle = AdapterOracle.fromFile(spec.file, {
      answer: o.answer, pricePer1000: o.pricePer1000, concurrency: o.concurrency, ratePerMinute: o.ratePerMinute,
      timeoutMs: o.timeoutMs, keyEnv: o.keyEnv, env, rawStoreFile: o.rawStoreFile,
    });
    return { oracle, close: () => oracle.close() };
  }
  if (spec.kind === 'http') {
    const apiKey = readKey(o.keyEnv ?? 'COPYCAT_ORACLE_KEY', env, `--oracle http:${spec.url}`);
    // No signal here: it would abort requests in flight, which the server may already have charged.
    // labelImages passes its stop signal to each query() instead, which lets them finish.
    const oracle = await HttpOracle.connect({
      url: spec.url, apiKey, concurrency: o.concurrency, ratePerMinute: o.ratePerMinute,
      pricePer1000: o.pricePer1000, answer: o.answer, timeoutMs: o.timeoutMs,
    });
    return { oracle, close: () => undefined };
  }
  // Loaded lazily: the native TensorFlow backend takes seconds and only local oracles need it.
  const [{ initBackend }, { loadModel }, { LocalOracle }] = await Promise.all([import('./platform/backend'), import('./io'), import('./oracle/local')]);
  await initBackend({ allowPureJs: true, quiet: true });
  const dir = path.resolve(spec.dir);
  const model = await loadModel(dir);
  const numClasses = model.outputs[0]?.shape[1];
  const oracle = new LocalOracle(model, {
    name: dir, answer: o.answer, pricePer1000: o.pricePer1000,
    classNames: numClasses === CIFAR10_CLASSES.length ? [...CIFAR10_CLASSES] : undefined,
  });
  return { oracle, close: () => model.dispose() };
}

/** Images `idx` of `set`, in that order, with their ids; labels dropped (the attacker has none). */
const imagesAt = (set: ImageSet, idx: number[]): ImageSet => discardLabels(pickImages(set, idx));

/**
 * Labels the images of `opts.source` with `opts.oracle` and writes the stolen-label set to `opts.out`
 * (answers cached next to it: a rerun, or a run killed and restarted, pays nothing twice).
 */
export async function steal(opts: StealOptions): Promise<{ summary: StealSummary; stolen: OutsideStolenSet }> {
  const log = opts.log ?? ((s: string) => console.error(s));
  if (!opts.out || !/\.json$/i.test(opts.out)) throw new Error(`--out: expected a .json file for the stolen-label set, got '${opts.out ?? ''}'`);
  const source = typeof opts.source === 'string' ? parseSourceSpec(opts.source, { mirrorDir: opts.npd?.mirrorDir }) : validateNpdSource(opts.source);
  const size = opts.size ?? 32;
  const seed = opts.seed ?? 0;
  for (const [flag, v] of [['--images', opts.images], ['--budget', opts.budget ?? undefined], ['--concurrency', opts.concurrency], ['--size', opts.size]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v >= (flag === '--budget' ? 0 : 1))) throw new Error(`${flag}: expected a whole number${flag === '--budget' ? ' >= 0' : ' >= 1'}, got ${v}`);
  }
  if (opts.answer !== undefined) normalizeAnswerSpec(opts.answer); // a typo fails before anything is paid

  let oracle: Oracle;
  let close = (): void => undefined;
  if (typeof opts.oracle === 'string') {
    const opened = await openOracle(parseOracleSpec(opts.oracle), { ...opts, rawStoreFile: apiAnswersFileOf(opts.out) });
    oracle = opened.oracle;
    close = opened.close;
  } else oracle = opts.oracle;
  try {
    const adapter = oracle instanceof AdapterOracle ? oracle : undefined;
    const files = stealFiles(opts.out, oracle.info);
    const npd = await loadNpd(source, { ...opts.npd, size, maxImages: opts.images, seed, log });
    log(`steal: ${npd.n} images from ${npd.source} -> ${oracle.info.kind} oracle ${oracle.info.name} (${formatAnswerSpec(oracle.info.answer)})`);
    const name = opts.name ?? 'NPD-SL';
    const labelOpts = { cacheFile: files.cacheFile, outFile: files.allFile, name, batchSize: opts.batchSize, signal: opts.signal, progress: opts.progress, budget: opts.budget };
    const images: ImageSet = { images: npd.images, n: npd.n, height: npd.height, width: npd.width, ...(npd.ids ? { ids: npd.ids } : {}) };
    let all: StolenLabelSet;
    let labeledImages = images;
    let complete = true;
    let unlabeled = 0;
    try {
      all = await labelImages(oracle, images, labelOpts);
    } catch (e) {
      if (!(e instanceof QueryBudgetExceeded)) throw e;
      // The budget is spent: the set is what was paid for (this call and earlier ones), from the cache.
      const hashes = imageHashes(images.images, images.n, images.height * images.width * 3);
      const cache = QueryCache.open(files.cacheFile, oracle.info, { height: images.height, width: images.width });
      let have: number[];
      try {
        have = hashes.flatMap((h, i) => (cache.has(h) ? [i] : []));
      } finally {
        cache.close();
      }
      complete = false;
      unlabeled = new Set(hashes).size - new Set(have.map((i) => hashes[i])).size;
      log(`steal: ${e.message}; writing the ${have.length} images labeled so far (${unlabeled} distinct images stay unlabeled)`);
      labeledImages = imagesAt(images, have);
      all = await labelImages(oracle, labeledImages, { ...labelOpts, progress: false });
    }

    // Unmapped images were paid (they stay in the cache and in the .all.json file) but carry no class.
    const U = adapter?.unmappedLabel;
    const keep = all.labels.flatMap((l, i) => (l === U ? [] : [i]));
    const unmappedIdx = all.labels.flatMap((l, i) => (l === U ? [i] : []));
    const names: Record<string, number> = {};
    for (const i of unmappedIdx) {
      const top = adapter?.rawAnswer(all.hashes[i])?.top ?? '(unknown: not in the API answer store)';
      names[top] = (names[top] ?? 0) + 1;
    }
    const classes = adapter ? adapter.spec.classes : all.oracle.classNames;
    const stolen: OutsideStolenSet = {
      ...all,
      createdAt: new Date().toISOString(),
      oracle: { ...all.oracle, numClasses: U ?? all.oracle.numClasses, classNames: classes },
      n: keep.length,
      hashes: keep.map((i) => all.hashes[i]),
      ...(all.ids ? { ids: keep.map((i) => all.ids![i]) } : {}),
      labels: keep.map((i) => all.labels[i]),
      // The marker class only existed for the cache; the set's answers cover the attack's classes alone.
      ...(all.answers ? { answers: keep.map((i) => { const a = all.answers![i]; return a.probs ? { ...a, probs: a.probs.slice(0, U ?? a.probs.length) } : a; }) } : {}),
      npd: { spec: typeof opts.source === 'string' ? opts.source : JSON.stringify(opts.source), source, label: npd.source, size, ...(opts.images !== undefined ? { maxImages: opts.images } : {}), seed, decoded: npd.n },
      unmapped: { count: unmappedIdx.length, names, ...(all.ids ? { ids: unmappedIdx.slice(0, 1000).map((i) => all.ids![i]) } : {}) },
      steal: { complete, unlabeled, allFile: files.allFile, ...(adapter ? { apiAnswersFile: files.apiAnswersFile } : {}) },
    };
    fs.mkdirSync(path.dirname(files.out), { recursive: true });
    writeFileAtomic(files.out, JSON.stringify(stolen));
    const st = oracle.stats();
    const topNames = Object.fromEntries(Object.entries(names).sort((a, b) => b[1] - a[1]).slice(0, 10));
    const summary: StealSummary = {
      out: files.out, source: npd.source, oracle: oracle.info.name, kind: oracle.info.kind, answer: formatAnswerSpec(oracle.info.answer),
      images: npd.n, labeled: labeledImages.n, kept: keep.length, unmapped: unmappedIdx.length, unmappedNames: topNames,
      queries: st.queries, requests: st.requests, throttled: st.throttled, failedAttempts: st.failedAttempts,
      // Whatever was not paid now came from an earlier call (query cache, or the adapter's raw store).
      fromCache: Math.max(0, all.queries.distinct - st.queries),
      cost: st.cost, totalCost: all.cost.usd, complete, unlabeled,
    };
    return { summary, stolen };
  } finally {
    close();
  }
}

/**
 * Picks, in `hashes` order, the images of `set` with those digests (the images a stolen set was made
 * from, after unmapped ones were dropped). Throws naming the first one missing.
 */
export function selectByHashes(set: ImageSet, hashes: readonly string[], what = 'the stolen set'): ImageSet {
  const h = imageHashes(set.images, set.n, set.height * set.width * 3);
  // The set is the loaded images in source order minus the unmapped ones: match it as a subsequence so
  // duplicates keep their own ids. A reordered source falls back to the first image with each digest.
  const idx: number[] = [];
  let j = 0;
  for (const x of hashes) {
    while (j < h.length && h[j] !== x) j++;
    if (j === h.length) break;
    idx.push(j++);
  }
  if (idx.length === hashes.length) return imagesAt(set, idx);
  const where = new Map<string, number>();
  h.forEach((x, i) => where.has(x) || where.set(x, i));
  return imagesAt(set, hashes.map((x, k) => {
    const i = where.get(x);
    if (i === undefined) throw new Error(`image ${k} of ${what} (sha1 ${x}) is not among the ${set.n} images loaded: the source changed since it was labeled`);
    return i;
  }));
}

/**
 * A stolen set written by `npm run steal`, with its images loaded again from the recorded source: `set`
 * is the copycat's training set (labels, plus soft targets when the answers had probabilities or top-k).
 * `classes` (default CIFAR-10) must be the set's class names, in order, so label i means the same class.
 */
export async function loadStolenSetWithImages(
  file: string,
  opts: { classes?: readonly string[]; npd?: Omit<NpdOptions, 'maxImages' | 'seed' | 'size'> } = {},
): Promise<{ stolen: OutsideStolenSet; images: ImageSet; set: ImageSet }> {
  const stolen = loadStolenLabels(file) as OutsideStolenSet;
  if (!stolen.npd || typeof stolen.npd !== 'object' || !stolen.npd.source) {
    throw new Error(`${file}: field 'npd' missing: not written by npm run steal, so the images it was made from are unknown`);
  }
  const classes = opts.classes ?? CIFAR10_CLASSES;
  const names = stolen.oracle.classNames;
  if (names && JSON.stringify(names) !== JSON.stringify([...classes])) {
    throw new Error(`${file}: its classes are ${JSON.stringify(names)}, expected ${JSON.stringify([...classes])} (label i must mean the same class)`);
  }
  if (!names && stolen.oracle.numClasses !== classes.length) throw new Error(`${file}: oracle.numClasses is ${stolen.oracle.numClasses}, expected ${classes.length}`);
  const { source, size, maxImages, seed } = stolen.npd;
  const npd = await loadNpd(source, { ...opts.npd, size, maxImages, seed });
  const images = selectByHashes(npd, stolen.hashes, file);
  return { stolen, images, set: stolenImageSet(images, stolen, { verify: false }) };
}
