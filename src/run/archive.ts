import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { spawnSync } from 'child_process';
import { cpuHasAmxBf16, readCpuInfo } from '../platform/cpu';
import { writeFileAtomic } from '../io';
import { VIEW_CACHE_DIR } from './layout';

/**
 * A run archive: the part of a run directory that took hours of CPU to make (the oracle's weights, its
 * answers, the copies' weights and results, the checkpoint of a copy still training) copied to a folder
 * that can be committed or shipped, with an MD5 per file. Restoring it into a run directory lets
 * `members`, `ensemble` and `distil` go on where the archived run stopped, on any machine: the copies
 * then attack the very oracle that answered, even where retraining it would give other digits (the
 * seeded oracle is repeatable per CPU kind, not across kinds; docs/experiments.md).
 *
 * Left out: checkpoints of anything already finished (its model/ and result.json are kept), logs, the
 * previous-config copies, the executed notebooks and the ensembles' cached test-set probabilities
 * (recomputed in minutes); `pack --exclude GLOB` leaves out more (e.g. a query cache over 2 MB). The
 * query cache (JSON lines) and large JSON files are stored gzip'ed.
 */

export const ARCHIVE_FORMAT = 'copycat-run-archive';
export const MANIFEST = 'archive.json';
/** JSON files above this many bytes (stolen-label sets, long results) are stored gzip'ed, like the cache. */
export const GZIP_JSON_ABOVE = 64 * 1024;

export interface ArchivedFile {
  /** Path inside the run directory, '/'-separated. */
  path: string;
  bytes: number;
  md5: string;
  /** Stored as `path`.gz in the archive. */
  gzip?: boolean;
  /**
   * Not in the archive folder any more: its stored bytes are in git history, at the manifest's
   * `history.commit` (heavy weights leave the tree; a clone still has them).
   */
  inHistory?: boolean;
}

export interface ArchiveManifest {
  format: typeof ARCHIVE_FORMAT;
  version: 1;
  created: string;
  /** Base name of the archived run directory. */
  run: string;
  /** Where it was made: the CPU decides the digits of seeded runs. */
  cpu: string;
  files: ArchivedFile[];
  /** The commit whose tree still holds the files marked inHistory, at the same place (see slimArchive). */
  history?: { commit: string };
}

const md5 = (buf: Buffer): string => crypto.createHash('md5').update(buf).digest('hex');

function cpuModel(): string {
  const info = readCpuInfo();
  const m = info === undefined ? null : /^model name\s*:\s*(.+)$/m.exec(info);
  if (m) return `${m[1].trim()}${cpuHasAmxBf16(info) ? ' (amx_bf16)' : ''}`;
  return `${process.platform}-${process.arch}`;
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

function removeEmptyDirs(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = path.join(dir, e.name);
    removeEmptyDirs(sub);
    if (!fs.readdirSync(sub).length) fs.rmdirSync(sub);
  }
}

/** Whether a run-relative file belongs in the archive (see the module comment). */
export function archivable(runDir: string, rel: string): boolean {
  const base = path.posix.basename(rel);
  if (base.endsWith('.log') || /^config\.prev-\d+\.json$/.test(base)) return false;
  if (rel.startsWith(`${VIEW_CACHE_DIR}/`)) return false;
  // Executed notebooks are output (figures as base64), made again by any rerun: git keeps no outputs.
  if (rel.startsWith('notebooks/') && rel.endsWith('.ipynb')) return false;
  const parts = rel.split('/');
  // Half-written files and checkpoint folders of a killed process (writeFileAtomic, saveCheckpoint).
  if (parts.some((p) => /\.tmp-\d+-\d+$/.test(p))) return false;
  const ck = parts.indexOf('checkpoints');
  if (ck >= 0) {
    // A finished model makes its checkpoints dead weight; an unfinished one keeps them (only the latest
    // epoch is on disk, src/train/checkpoint.ts) so a restored run resumes instead of starting over.
    const owner = path.join(runDir, ...parts.slice(0, ck));
    return !fs.existsSync(path.join(owner, 'model', 'model.json'));
  }
  return true;
}

/**
 * Copies the archivable files of `runDir` to `outDir` (created; files of an earlier archive there that
 * the run no longer has are removed) and writes the manifest. Returns it.
 */
export function archiveRun(runDir: string, outDir: string, log: (s: string) => void = () => {}, include: (rel: string) => boolean = () => true): ArchiveManifest {
  if (!fs.existsSync(path.join(runDir, 'config.json'))) {
    throw new Error(`archive: ${runDir} is not a run directory (no config.json)`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  // Files an earlier slimArchive left in git history stay there when the run still has them unchanged.
  const before = fs.existsSync(path.join(outDir, MANIFEST)) ? readManifest(outDir) : undefined;
  const inHistory = new Map((before?.files ?? []).filter((f) => f.inHistory).map((f) => [f.path, f]));
  const files: ArchivedFile[] = [];
  for (const rel of walk(runDir).filter((r) => archivable(runDir, r) && include(r))) {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(path.join(runDir, rel));
    } catch (e) {
      // A training process replaces its checkpoint folder at each epoch's end.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`archive: ${rel} vanished while packing (a checkpoint replaced by a running training?); pack again, or after the training stops`);
      throw e;
    }
    const old = inHistory.get(rel);
    if (old && old.md5 === md5(buf)) {
      files.push(old);
      continue;
    }
    // Text compresses 3-4x (the stolen sets and the cache are mostly hex hashes); weights do not.
    const gzip = rel.endsWith('.jsonl') || (rel.endsWith('.json') && buf.length > GZIP_JSON_ABOVE);
    const stored = path.join(outDir, gzip ? `${rel}.gz` : rel);
    fs.mkdirSync(path.dirname(stored), { recursive: true });
    // mtime 0 in the gzip header: the same input gives the same bytes, so git sees no change.
    writeFileAtomic(stored, gzip ? zlib.gzipSync(buf, { level: 9 }) : buf);
    files.push({ path: rel, bytes: buf.length, md5: md5(buf), ...(gzip ? { gzip } : {}) });
  }
  const keep = new Set([MANIFEST, ...files.filter((f) => !f.inHistory).map((f) => (f.gzip ? `${f.path}.gz` : f.path))]);
  for (const rel of walk(outDir)) {
    if (!keep.has(rel)) {
      fs.rmSync(path.join(outDir, rel));
      log(`removed ${rel} (no longer in the run)`);
    }
  }
  removeEmptyDirs(outDir);
  const manifest: ArchiveManifest = {
    format: ARCHIVE_FORMAT, version: 1, created: new Date().toISOString(), run: path.basename(path.resolve(runDir)), cpu: cpuModel(), files,
    ...(files.some((f) => f.inHistory) && before?.history ? { history: before.history } : {}),
  };
  writeFileAtomic(path.join(outDir, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  const total = files.reduce((t, f) => t + f.bytes, 0);
  log(`archived ${files.length} files (${(total / 1e6).toFixed(1)} MB before gzip) of ${runDir} to ${outDir}`);
  return manifest;
}

export function readManifest(archiveDir: string): ArchiveManifest {
  const file = path.join(archiveDir, MANIFEST);
  if (!fs.existsSync(file)) throw new Error(`restore: ${file} not found: not a run archive`);
  const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<ArchiveManifest>;
  if (m.format !== ARCHIVE_FORMAT || m.version !== 1 || !Array.isArray(m.files)) {
    throw new Error(`restore: ${file}: expected format '${ARCHIVE_FORMAT}' version 1 with a files list`);
  }
  return m as ArchiveManifest;
}

export interface RestoreSummary {
  written: number;
  unchanged: number;
}

/**
 * Writes the archived files into `runDir`, checking each against its MD5. A file already there with the
 * same content is left alone; one with other content is an error naming it (nothing is overwritten), so
 * restoring never clobbers a run that went further than the archive.
 */
export function restoreRun(archiveDir: string, runDir: string, log: (s: string) => void = () => {}): RestoreSummary {
  const m = readManifest(archiveDir);
  const plan: { f: ArchivedFile; buf: Buffer }[] = [];
  const conflicts: string[] = [];
  let unchanged = 0;
  for (const f of m.files) {
    if (f.path.split('/').includes('..') || path.isAbsolute(f.path)) throw new Error(`restore: ${MANIFEST} names a path outside the run: '${f.path}'`);
    const stored = path.join(archiveDir, f.gzip ? `${f.path}.gz` : f.path);
    const raw = storedBytes(archiveDir, m, f, stored);
    const buf = f.gzip ? zlib.gunzipSync(raw) : raw;
    if (md5(buf) !== f.md5) throw new Error(`restore: ${stored}${f.inHistory ? ` (from commit ${m.history?.commit})` : ''} is corrupt: MD5 ${md5(buf)}, ${MANIFEST} expects ${f.md5}`);
    const target = path.join(runDir, f.path);
    if (fs.existsSync(target)) {
      if (md5(fs.readFileSync(target)) === f.md5) unchanged++;
      else conflicts.push(f.path);
      continue;
    }
    plan.push({ f, buf });
  }
  // config.json is rewritten by every command that opens the run, so a difference there is only
  // reported; anything else that differs means the run is not the archived one.
  const hard = conflicts.filter((c) => c !== 'config.json');
  if (hard.length) {
    throw new Error(`restore: ${runDir} already holds other versions of ${hard.length} archived file(s), e.g. ${hard.slice(0, 3).join(', ')}; restore into an empty run directory or remove them`);
  }
  if (conflicts.length) log(`kept ${runDir}/config.json (differs from the archived one)`);
  for (const { f, buf } of plan) {
    const target = path.join(runDir, f.path);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    writeFileAtomic(target, buf);
  }
  log(`restored ${plan.length} files into ${runDir} (${unchanged} already there); archived on ${m.created} from ${m.cpu}`);
  return { written: plan.length, unchanged };
}

/** The git work tree and the path of `file` inside it (git needs both to read a file of another commit). */
function gitPlace(file: string): { root: string; rel: string } {
  // A slimmed archive lacks the file's folder: ask git from the nearest folder that is still there.
  let dir = path.dirname(path.resolve(file));
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const r = spawnSync('git', ['rev-parse', '--show-toplevel'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`restore: ${file} is kept in git history, but ${dir} is not inside a git clone (${r.stderr.trim()})`);
  const root = r.stdout.trim();
  return { root, rel: path.relative(root, path.resolve(file)).split(path.sep).join('/') };
}

/** The bytes git holds for `file` at `commit`, or an error naming both. */
export function bytesAtCommit(file: string, commit: string): Buffer {
  const { root, rel } = gitPlace(file);
  const r = spawnSync('git', ['show', `${commit}:${rel}`], { cwd: root, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`restore: git has no ${rel} at commit ${commit} (${r.stderr.toString().trim()}); a shallow clone lacks history: 'git fetch --unshallow'`);
  return r.stdout;
}

function storedBytes(archiveDir: string, m: ArchiveManifest, f: ArchivedFile, stored: string): Buffer {
  if (fs.existsSync(stored)) return fs.readFileSync(stored);
  if (!f.inHistory) throw new Error(`restore: ${stored} is missing from the archive (listed in ${MANIFEST})`);
  if (!m.history?.commit) throw new Error(`restore: ${MANIFEST} marks ${f.path} as kept in history but names no history.commit`);
  return bytesAtCommit(stored, m.history.commit);
}

/**
 * Takes the files that `keep` rejects out of an archive folder: each must be in git at `commit` (the
 * commit that has them, normally HEAD) with the same MD5, then it is deleted from the folder and marked
 * inHistory, so `restoreRun` fetches it from that commit. Git then carries the weights in history only:
 * a checkout stays small, and `git rm` is all that is left to do. Returns the paths taken out.
 */
export function slimArchive(archiveDir: string, keep: (rel: string) => boolean, commit: string, log: (s: string) => void = () => {}): string[] {
  const m = readManifest(archiveDir);
  if (m.history && m.history.commit !== commit && m.files.some((f) => f.inHistory)) {
    throw new Error(`slim: ${MANIFEST} already keeps files at commit ${m.history.commit}; restore them and pack again before naming another commit`);
  }
  const out: string[] = [];
  for (const f of m.files) {
    if (f.inHistory || keep(f.path)) continue;
    const stored = path.join(archiveDir, f.gzip ? `${f.path}.gz` : f.path);
    const raw = bytesAtCommit(stored, commit);
    const buf = f.gzip ? zlib.gunzipSync(raw) : raw;
    if (md5(buf) !== f.md5) throw new Error(`slim: ${f.path} at commit ${commit} has MD5 ${md5(buf)}, ${MANIFEST} expects ${f.md5}; commit the archive first`);
    fs.rmSync(stored, { force: true });
    f.inHistory = true;
    out.push(f.path);
  }
  removeEmptyDirs(archiveDir);
  const slim: ArchiveManifest = { ...m, history: { commit } };
  writeFileAtomic(path.join(archiveDir, MANIFEST), JSON.stringify(slim, null, 2) + '\n');
  log(`kept ${out.length} file(s) in git history only (commit ${commit}); ${m.files.length - out.length - m.files.filter((f) => f.inHistory && !out.includes(f.path)).length} stay in the tree`);
  return out;
}
