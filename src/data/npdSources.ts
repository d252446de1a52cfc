import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { dataDir, mirrorDir } from '../paths';
import { downloadFile, verifyFile } from './download';
import { downloadProgress } from './downloadProgress';

/**
 * Where non-problem-domain (NPD) images come from: natural images unrelated to the oracle's classes,
 * which the attacker sends to the oracle to steal labels.
 */
export type NpdSource =
  | { kind: 'folder'; path: string }
  | { kind: 'zip'; path: string }
  | { kind: 'tiny-imagenet' }
  | { kind: 'tiny-imagenet-rest20k' }
  | { kind: 'coco-train2014' }
  | { kind: 'coco-val2017' };

export const NPD_SOURCE_KINDS = ['folder', 'zip', 'tiny-imagenet', 'tiny-imagenet-rest20k', 'coco-train2014', 'coco-val2017'] as const;

export interface OfficialArchive {
  url: string;
  file: string;
  bytes: number;
  md5: string;
  /** Entries of the archive that are NPD images. */
  accept: RegExp;
}

/** Tiny ImageNet-200 (Stanford CS231n): only the 100,000 train images are used. */
export const TINY_IMAGENET: OfficialArchive = {
  url: 'http://cs231n.stanford.edu/tiny-imagenet-200.zip',
  file: 'tiny-imagenet-200.zip',
  bytes: 248_100_043,
  md5: '90528d7ca1a48142e341f4ef8d21d0de',
  accept: /^tiny-imagenet-200\/train\/[^/]+\/images\/[^/]+\.JPEG$/,
};

/** The project's offline mirror: 80,000 of those train images (400 per class), same layout, stored zip. */
export const TINY_IMAGENET_MIRROR = {
  file: 'tiny-imagenet-200-train80k.zip',
  bytes: 171_094_435,
  sha256: '500b89641608d1b7487d94fc4e6f9cd4852b11feb98c29e7c2a9bc647ede08b2',
};

/**
 * The other 20,000 Tiny ImageNet train images (`<wnid>_400` … `<wnid>_499` of each class): none is in the
 * 80k mirror. Natural images an attacker has but does not pay to label (the unqueried pool, src/data/pool.ts).
 * From the official archive they are the entries this pattern accepts.
 */
export const TINY_IMAGENET_REST20K_MIRROR = {
  file: 'tiny-imagenet-200-train-rest20k.zip',
  bytes: 42_716_669,
  sha256: '4a7ea3e0a766c3cf63f13d4de3c97f0a201b2c7e2d364f9459c80ca2f758968d',
  accept: /^tiny-imagenet-200\/train\/[^/]+\/images\/[^/]+_4\d\d\.JPEG$/,
};

export const COCO_TRAIN2014: OfficialArchive = {
  url: 'http://images.cocodataset.org/zips/train2014.zip',
  file: 'train2014.zip',
  bytes: 13_510_573_713,
  md5: '0da8c0bd3d6becc4dcb32757491aca88',
  accept: /^train2014\/[^/]+\.jpg$/,
};

export const COCO_VAL2017: OfficialArchive = {
  url: 'http://images.cocodataset.org/zips/val2017.zip',
  file: 'val2017.zip',
  bytes: 815_585_330,
  md5: '442b8da7639aecaf257c1dceb8ba8c80',
  accept: /^val2017\/[^/]+\.jpg$/,
};

export interface ResolveOptions {
  dataDir?: string;
  mirrorDir?: string;
  cacheDir?: string;
  log?: (line: string) => void;
  /** Skip official URLs (offline machines); $COPYCAT_OFFLINE=1 does the same. */
  offline?: boolean;
}

/** What a source resolves to on disk: a folder, or a zip plus the entries that count. */
export type ResolvedSource =
  | { kind: 'folder'; path: string; label: string }
  | { kind: 'zip'; path: string; label: string; accept?: (name: string) => boolean };

/** Checks that a config value is an NpdSource, naming the field and what is expected. */
export function validateNpdSource(source: unknown): NpdSource {
  const s = source as { kind?: unknown; path?: unknown } | null;
  if (!s || typeof s !== 'object') throw new Error(`NPD source: expected an object like { kind: 'tiny-imagenet' }, got ${JSON.stringify(source)}`);
  if (!(NPD_SOURCE_KINDS as readonly unknown[]).includes(s.kind)) {
    throw new Error(`NPD source: kind must be one of ${NPD_SOURCE_KINDS.join(', ')}, got ${JSON.stringify(s.kind)}`);
  }
  if ((s.kind === 'folder' || s.kind === 'zip') && (typeof s.path !== 'string' || !s.path)) {
    throw new Error(`NPD source { kind: '${s.kind}' }: field 'path' must be a non-empty string (the ${s.kind === 'zip' ? 'zip file' : 'folder'})`);
  }
  return s as NpdSource;
}

/**
 * Hashing a 250 MB-13 GB archive on every load would cost seconds to minutes, so a successful check is
 * remembered by (path, size, mtime) in <cacheDir>/verified/.
 */
async function verifiedOnce(file: string, expect: { md5?: string; sha256?: string; bytes?: number }, cacheDir: string): Promise<string | null> {
  const st = fs.statSync(file);
  const stamp = path.join(cacheDir, 'verified', crypto.createHash('sha256').update(JSON.stringify([path.resolve(file), st.size, st.mtimeMs, expect])).digest('hex').slice(0, 24));
  if (fs.existsSync(stamp)) return null;
  const problem = await verifyFile(file, expect);
  if (!problem) {
    fs.mkdirSync(path.dirname(stamp), { recursive: true });
    fs.writeFileSync(stamp, `${file}\n`);
  }
  return problem;
}

async function officialArchive(a: OfficialArchive, label: string, opts: ResolveOptions, cacheDir: string): Promise<string> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const errors: string[] = [];
  const mirror = opts.mirrorDir ?? mirrorDir();
  if (mirror && fs.existsSync(path.join(mirror, a.file))) {
    const file = path.join(mirror, a.file);
    const problem = await verifiedOnce(file, a, cacheDir);
    if (!problem) return file;
    errors.push(`mirror: ${problem}`);
  }
  const dest = path.join(opts.dataDir ?? dataDir(), 'downloads', a.file);
  if (fs.existsSync(dest)) {
    const problem = await verifiedOnce(dest, a, cacheDir);
    if (!problem) return dest;
    log(`${problem}; downloading again`);
  }
  if (opts.offline ?? process.env.COPYCAT_OFFLINE === '1') {
    errors.push('offline ($COPYCAT_OFFLINE=1 or offline: true): official URL not tried');
  } else {
    try {
      log(`${label}: downloading ${a.url} (${(a.bytes / 1e6).toFixed(0)} MB) to ${dest}`);
      await downloadFile(a.url, dest, { md5: a.md5, bytes: a.bytes, log, onProgress: downloadProgress(a.file) });
      await verifiedOnce(dest, a, cacheDir);
      return dest;
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  throw new Error(`${label} could not be obtained:\n  - ${errors.join('\n  - ')}\n` +
    `Put ${a.file} (md5 ${a.md5}) in $COPYCAT_MIRROR_DIR or ${path.dirname(dest)}, or use { kind: 'zip' | 'folder', path }.`);
}

/** A part of Tiny ImageNet: its checked mirror zip, else the entries `accept` takes of the official archive. */
async function tinyImagenetPart(
  mirrorZip: { file: string; bytes: number; sha256: string }, accept: RegExp, mirrorLabel: string, officialLabel: string,
  opts: ResolveOptions & { cacheDir: string },
): Promise<ResolvedSource> {
  const takes = (n: string) => accept.test(n);
  const mirror = opts.mirrorDir ?? mirrorDir();
  const m = mirror ? path.join(mirror, mirrorZip.file) : undefined;
  if (m && fs.existsSync(m)) {
    const problem = await verifiedOnce(m, mirrorZip, opts.cacheDir);
    if (!problem) return { kind: 'zip', path: m, label: `${mirrorLabel} (mirror ${m})`, accept: takes };
    (opts.log ?? console.log)(`${mirrorLabel} mirror ${problem}; ignoring it`);
  }
  const file = await officialArchive(TINY_IMAGENET, 'Tiny ImageNet', opts, opts.cacheDir);
  return { kind: 'zip', path: file, label: `${officialLabel} (${file})`, accept: takes };
}

/** Finds (or downloads) the files behind a source. Official archives are checksum-verified. */
export async function resolveNpdSource(source: NpdSource, opts: ResolveOptions & { cacheDir: string }): Promise<ResolvedSource> {
  const s = validateNpdSource(source);
  switch (s.kind) {
    case 'folder':
      return { kind: 'folder', path: path.resolve(s.path), label: `folder ${s.path}` };
    case 'zip':
      return { kind: 'zip', path: path.resolve(s.path), label: `zip ${s.path}` };
    case 'tiny-imagenet':
      return tinyImagenetPart(TINY_IMAGENET_MIRROR, TINY_IMAGENET.accept, 'Tiny ImageNet train', 'Tiny ImageNet train', opts);
    case 'tiny-imagenet-rest20k':
      return tinyImagenetPart(TINY_IMAGENET_REST20K_MIRROR, TINY_IMAGENET_REST20K_MIRROR.accept, 'Tiny ImageNet train, rest 20k', 'Tiny ImageNet train, images 400-499 per class', opts);
    case 'coco-train2014':
    case 'coco-val2017': {
      const a = s.kind === 'coco-train2014' ? COCO_TRAIN2014 : COCO_VAL2017;
      const file = await officialArchive(a, `MS COCO ${a.file}`, opts, opts.cacheDir);
      return { kind: 'zip', path: file, label: `MS COCO ${a.file}`, accept: (n) => a.accept.test(n) };
    }
  }
}
