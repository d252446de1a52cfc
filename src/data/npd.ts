import * as os from 'os';
import * as path from 'path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { dataDir } from '../paths';
import { progress } from '../display/progress';
import { ImageSet } from '../types';
import { decodeInto, DecodeOptions, DEFAULT_MAX_PIXELS, SKIP } from './decode';
import { listFolderImages } from './folderImages';
import { cacheKeyHash, readImageCache, writeImageCache } from './imageCache';
import { ImageEntry, ImageListing } from './imageEntries';
import { NpdSource, resolveNpdSource, ResolveOptions, validateNpdSource } from './npdSources';
import { listZipImages } from './zipImages';
import * as fs from 'fs';

export type { NpdSource } from './npdSources';

/** What a load did, for the notebook and the run report. */
export interface LoadSummary {
  /** Human-readable source (e.g. "Tiny ImageNet train (mirror ...)"). */
  source: string;
  /** Files in the source named like images: the candidates. */
  available: number;
  /** Files looked at: decoded + skipped (with maxImages, only those the seeded draw reached). */
  total: number;
  decoded: number;
  skipped: number;
  /** Skipped files per reason ("corrupt or truncated image": 2, "not an image file name": 1...). */
  skippedReasons: Record<string, number>;
  /** Up to 20 "id: reason (decoder message)" lines. */
  examplesSkipped: string[];
  fromCache: boolean;
  cacheFile: string;
  seconds: number;
}

/** An NPD load: the images (uint8 NHWC RGB, ids = path inside the zip / folder) plus what happened. */
export type NpdSet = ImageSet & { summary: LoadSummary; source: string };

export interface NpdOptions extends DecodeOptions, ResolveOptions {
  /** A seeded random subset of this many decodable images (default: all). */
  maxImages?: number;
  /** Seed of that subset (default 0). */
  seed?: number;
  /** Default <dataDir>/cache. */
  cacheDir?: string;
  /** Called with (images looked at, images to look at); without it a progress line is shown. */
  onProgress?: (done: number, total: number) => void;
  /** Images decoded concurrently (default 4 x cores: reads and sharp fallbacks overlap the wasm decodes). */
  concurrency?: number;
  /** Entries larger than this many bytes are skipped unread (default 256 MB). */
  maxFileBytes?: number;
}

/** Bumped whenever decoding or resampling changes the pixels, so old caches are not reused. */
const DECODER_VERSION = 'npd-decode-1';
const MAX_EXAMPLES = 20;

interface CacheMeta {
  available: number;
  /** Candidate index of each cached image, ascending. */
  index: number[];
  skipped: { i: number; reason: string }[];
  summary: LoadSummary;
}

interface Skip { id: string; reason: string; detail: string }

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
function permutation(n: number, seed: number): Int32Array {
  const rng = seedrandom(`npd-subset/${seed}`);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(-48) || 'source';
}

/**
 * Loads NPD images as a uint8 NHWC ImageSet of size x size RGB images (ids: path inside the zip or
 * folder), decoding once and reading a checksummed cache afterwards. Bad files are skipped, counted and
 * reported in `summary`, never fatal. With `maxImages`, a seeded random subset of decodable images is
 * returned, in source order; it is the same subset whether decoded directly or taken from a full cache.
 */
export async function loadNpd(source: NpdSource, opts: NpdOptions = {}): Promise<NpdSet> {
  const t0 = Date.now();
  const log = opts.log ?? ((s: string) => console.log(s));
  validateNpdSource(source);
  const size = opts.size ?? 32;
  if (!Number.isInteger(size) || size < 1 || size > 4096) throw new Error(`loadNpd: size must be an integer 1..4096, got ${size}`);
  const maxImages = opts.maxImages;
  if (maxImages != null && (!Number.isInteger(maxImages) || maxImages < 1)) throw new Error(`loadNpd: maxImages must be a positive integer, got ${maxImages}`);
  const seed = opts.seed ?? 0;
  const cacheDir = opts.cacheDir ?? path.join(opts.dataDir ?? dataDir(), 'cache');
  const resolved = await resolveNpdSource(source, { ...opts, cacheDir, log });

  let listing: (ImageListing & { fingerprint?: string }) | undefined;
  let identity: unknown;
  if (resolved.kind === 'folder') {
    listing = listFolderImages(resolved.path);
    identity = { folder: resolved.path, files: cacheKeyHash(listing.fingerprint) };
  } else {
    let st: fs.Stats;
    try {
      st = fs.statSync(resolved.path);
    } catch {
      throw new Error(`NPD ${resolved.label}: ${resolved.path} does not exist`);
    }
    identity = { zip: resolved.path, bytes: st.size, mtimeMs: st.mtimeMs, entries: source.kind };
  }
  const decodeOpts = { size, background: opts.background ?? 'black', maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS };
  const base = { v: DECODER_VERSION, vips: sharp.versions.vips, identity, ...decodeOpts, maxFileBytes: opts.maxFileBytes ?? 256 << 20 };
  const cacheFile = (key: object) => path.join(cacheDir, 'npd', `${slug(path.basename(resolved.path))}-${size}px-${cacheKeyHash(key).slice(0, 16)}.u8`);
  const fullKey = { ...base, subset: null };
  const fullFile = cacheFile(fullKey);
  const subsetKey = { ...base, subset: { maxImages, seed } };
  const subsetFile = maxImages == null ? fullFile : cacheFile(subsetKey);

  const fromCache = (file: string, key: object) => {
    const c = readImageCache<CacheMeta>(file, JSON.stringify(key));
    if (c && 'problem' in c) {
      log(`${c.problem}; rebuilding it`);
      return null;
    }
    return c;
  };
  const done = (set: ImageSet, summary: LoadSummary): NpdSet => {
    summary.seconds = (Date.now() - t0) / 1000;
    return { ...set, summary, source: resolved.label };
  };

  const full = fromCache(fullFile, fullKey);
  if (full && maxImages == null) {
    return done({ images: full.images, n: full.n, height: size, width: size, ids: full.ids }, { ...full.meta.summary, fromCache: true, cacheFile: fullFile });
  }
  if (full && maxImages != null) return done(...subsetOfFull(full, maxImages, seed, size, fullFile));
  if (maxImages != null) {
    const sub = fromCache(subsetFile, subsetKey);
    if (sub) {
      return done({ images: sub.images, n: sub.n, height: size, width: size, ids: sub.ids }, { ...sub.meta.summary, fromCache: true, cacheFile: subsetFile });
    }
  }

  listing ??= await listZipImages(resolved.path, resolved.kind === 'zip' ? resolved.accept : undefined);
  try {
    const entries = listing.entries;
    const C = entries.length;
    log(`NPD ${resolved.label}: ${C} image files${listing.otherFiles.length ? `, ${listing.otherFiles.length} other files` : ''}; decoding to ${size}x${size}`);
    const skips: Skip[] = listing.otherFiles.map((id) => ({ id, reason: SKIP.notImageName, detail: 'extension' }));
    const skippedIdx: { i: number; reason: string }[] = [];
    let chosen: number[];
    let pixels: Uint8Array;
    const px = size * size * 3;
    const goal = maxImages == null ? C : Math.min(maxImages, C);
    const bar = opts.onProgress ? undefined : progress(goal, { label: 'decode NPD', unit: 'img' });
    const report = (n: number) => (opts.onProgress ? opts.onProgress(n, goal) : bar?.update(n));
    let looked = 0;
    if (maxImages == null) {
      const all = Array.from({ length: C }, (_, i) => i);
      pixels = new Uint8Array(C * px);
      const ok = await decodeMany(entries, all, pixels, { ...opts, ...decodeOpts }, skips, skippedIdx, () => report(++looked));
      chosen = all.filter((_, k) => ok[k]);
      compact(pixels, ok, px);
    } else {
      const perm = permutation(C, seed);
      const picked: { i: number; buf: Uint8Array }[] = [];
      let pos = 0;
      while (picked.length < goal && pos < C) {
        const batch = Array.from(perm.subarray(pos, Math.min(C, pos + goal - picked.length)));
        pos += batch.length;
        const buf = new Uint8Array(batch.length * px);
        const ok = await decodeMany(entries, batch, buf, { ...opts, ...decodeOpts }, skips, skippedIdx, () => report(Math.min(goal, ++looked)));
        batch.forEach((i, k) => ok[k] && picked.push({ i, buf: buf.subarray(k * px, (k + 1) * px) }));
      }
      picked.sort((a, b) => a.i - b.i);
      chosen = picked.map((p) => p.i);
      pixels = new Uint8Array(picked.length * px);
      picked.forEach((p, k) => pixels.set(p.buf, k * px));
    }
    bar?.finish();
    pixels = pixels.subarray(0, chosen.length * px);
    const ids = chosen.map((i) => entries[i].id);
    const summary = summarise(resolved.label, C, chosen.length, skips, subsetFile);
    if (summary.skipped > 0) {
      log(`NPD ${resolved.label}: skipped ${summary.skipped} files: ${Object.entries(summary.skippedReasons).map(([r, n]) => `${n} ${r}`).join(', ')}`);
    }
    if (chosen.length === 0) log(`NPD ${resolved.label}: no decodable images`);
    const meta: CacheMeta = { available: C, index: chosen, skipped: skippedIdx, summary };
    writeImageCache(subsetFile, JSON.stringify(maxImages == null ? fullKey : subsetKey), { images: pixels, n: chosen.length, height: size, width: size, ids }, meta);
    return done({ images: pixels, n: chosen.length, height: size, width: size, ids }, summary);
  } finally {
    await listing.close();
  }
}

function summarise(source: string, available: number, decoded: number, skips: Skip[], cacheFile: string): LoadSummary {
  const skippedReasons: Record<string, number> = {};
  for (const s of skips) skippedReasons[s.reason] = (skippedReasons[s.reason] ?? 0) + 1;
  return {
    source, available, total: decoded + skips.length, decoded, skipped: skips.length, skippedReasons,
    examplesSkipped: skips.slice(0, MAX_EXAMPLES).map((s) => `${s.id}: ${s.reason} (${s.detail})`),
    fromCache: false, cacheFile, seconds: 0,
  };
}

/** Moves the decoded slots to the front, in order. */
function compact(pixels: Uint8Array, ok: boolean[], px: number): void {
  let w = 0;
  for (let k = 0; k < ok.length; k++) {
    if (!ok[k]) continue;
    if (w !== k) pixels.copyWithin(w * px, k * px, (k + 1) * px);
    w++;
  }
}

/** The subset a direct decode would return, taken from a full cache (same permutation walk). */
function subsetOfFull(
  full: { images: Uint8Array; ids: string[]; meta: CacheMeta }, maxImages: number, seed: number, size: number, file: string,
): [ImageSet, LoadSummary] {
  const { available, index, skipped } = full.meta;
  const where = new Map<number, number>();
  index.forEach((ci, k) => where.set(ci, k));
  const why = new Map(skipped.map((s) => [s.i, s.reason]));
  const perm = permutation(available, seed);
  const pick: number[] = [];
  const reasons: Record<string, number> = {};
  let nSkipped = 0;
  for (let p = 0; p < available && pick.length < maxImages; p++) {
    const k = where.get(perm[p]);
    if (k != null) pick.push(k);
    else {
      const r = why.get(perm[p]) ?? SKIP.corrupt;
      reasons[r] = (reasons[r] ?? 0) + 1;
      nSkipped++;
    }
  }
  pick.sort((a, b) => a - b);
  const px = size * size * 3;
  const images = new Uint8Array(pick.length * px);
  pick.forEach((k, j) => images.set(full.images.subarray(k * px, (k + 1) * px), j * px));
  const summary: LoadSummary = {
    ...full.meta.summary, total: pick.length + nSkipped, decoded: pick.length, skipped: nSkipped, skippedReasons: reasons,
    examplesSkipped: full.meta.summary.examplesSkipped, fromCache: true, cacheFile: file, seconds: 0,
  };
  return [{ images, n: pick.length, height: size, width: size, ids: pick.map((k) => full.ids[k]) }, summary];
}

/** Decodes entries[which[k]] into slot k of `out`, `concurrency` at a time; returns which slots worked. */
async function decodeMany(
  entries: ImageEntry[], which: number[], out: Uint8Array, opts: NpdOptions & Required<Pick<NpdOptions, 'size'>>,
  skips: Skip[], skippedIdx: { i: number; reason: string }[], tick: () => void,
): Promise<boolean[]> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const px = opts.size * opts.size * 3;
  const maxFileBytes = opts.maxFileBytes ?? 256 << 20;
  const ok = new Array<boolean>(which.length).fill(false);
  const skip = (i: number, reason: string, detail: string) => {
    skips.push({ id: entries[i].id, reason, detail });
    skippedIdx.push({ i, reason });
    if (skips.length <= 10) log(`NPD: skipping ${entries[i].id}: ${reason} (${detail})`);
    else if (skips.length === 11) log('NPD: more files skipped; see summary.skippedReasons');
  };
  let next = 0;
  const worker = async () => {
    for (;;) {
      const k = next++;
      if (k >= which.length) return;
      const i = which[k];
      const e = entries[i];
      try {
        if (e.bytes > maxFileBytes) {
          skip(i, SKIP.tooLarge, `${e.bytes} bytes > ${maxFileBytes}`);
          continue;
        }
        let bytes: Uint8Array;
        try {
          bytes = await e.read();
        } catch (err) {
          skip(i, SKIP.unreadable, (err as Error).message);
          continue;
        }
        const r = await decodeInto(bytes, out, k * px, opts);
        if (r.ok) ok[k] = true;
        else skip(i, r.reason, r.detail);
      } finally {
        tick();
      }
    }
  };
  const n = opts.concurrency ?? Math.max(4, 4 * os.cpus().length);
  await Promise.all(Array.from({ length: Math.min(n, which.length) }, worker));
  return ok;
}

