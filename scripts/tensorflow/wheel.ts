/**
 * The TensorFlow Python wheel as a source of the TensorFlow C API: Google stopped publishing the
 * libtensorflow 2.9.1 tarball route tfjs-node's installer uses for anything newer, but every Linux
 * `tensorflow`/`tensorflow-cpu` wheel ships the C API inside libtensorflow_cc.so.2 plus its headers.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { openZip, ZipArchive } from './zip';

export const DEFAULT_TF_PACKAGE = 'tensorflow-cpu';
export const DEFAULT_TF_VERSION = '2.21.0';

/** Inside the wheel. The C API lives in _cc since TF 2.x stopped building a separate libtensorflow.so for pip. */
export const WHEEL_LIBS = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'] as const;
export const WHEEL_INCLUDE_ROOT = 'tensorflow/include/';

export interface WheelInfo {
  file: string;
  /** Distribution name and version from the wheel's METADATA, e.g. tensorflow-cpu 2.21.0. */
  name: string;
  version: string;
  /** The platform tag from the file name (manylinux_2_27_x86_64, ...). */
  platform: string;
}

/** Runs a command, returning its status and combined output (never throws). */
function tryRun(cmd: string, args: string[]): { ok: boolean; missing: boolean; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) return { ok: false, missing: (r.error as NodeJS.ErrnoException).code === 'ENOENT', output: r.error.message };
  return { ok: r.status === 0, missing: false, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** The pip commands to try: a pip on PATH first, then the interpreter's module (covers venv-less setups). */
function pipCandidates(): Array<{ cmd: string; pre: string[] }> {
  const out: Array<{ cmd: string; pre: string[] }> = [];
  if (process.env.PIP) out.push({ cmd: process.env.PIP, pre: [] });
  out.push({ cmd: 'pip3', pre: [] }, { cmd: 'pip', pre: [] });
  for (const py of [process.env.PYTHON, 'python3', 'python'].filter((p): p is string => !!p)) out.push({ cmd: py, pre: ['-m', 'pip'] });
  return out;
}

function findWheelIn(dir: string, pkg: string, version: string): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const stem = `${pkg.replace(/-/g, '_')}-${version}-`;
  const hit = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(stem) && f.endsWith('.whl') && /linux/.test(f))
    .sort();
  return hit.length ? path.join(dir, hit[hit.length - 1]) : undefined;
}

/**
 * Downloads `pkg==version` (no dependencies: only the C libraries are wanted) into `dir`, or finds it
 * there from an earlier run. Tries, in order: plain `pip download` (whatever index the user configured:
 * PyPI, a mirror, a local wheel directory), then the same pinned to a cp311 manylinux wheel so that a
 * Python other than 3.11 (or none matching any wheel) still gets a usable file: the C API does not
 * depend on the Python version.
 */
export function downloadWheel(dir: string, pkg = DEFAULT_TF_PACKAGE, version = DEFAULT_TF_VERSION, log = console.log): string {
  const cached = findWheelIn(dir, pkg, version);
  if (cached) return cached;
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
    throw new Error(
      `setup:tensorflow builds from Linux wheels only (this is ${process.platform}/${process.arch}). ` +
        'On macOS/Windows use the official tfjs-node install (npm rebuild @tensorflow/tfjs-node) or the wasm backend.',
    );
  }
  fs.mkdirSync(dir, { recursive: true });
  const spec = `${pkg}==${version}`;
  const plat = process.arch === 'x64' ? 'x86_64' : 'aarch64';
  const attempts: string[][] = [
    ['download', spec, '--no-deps', '--only-binary=:all:', '-d', dir],
    ['download', spec, '--no-deps', '--only-binary=:all:', '--python-version', '3.11', '--implementation', 'cp',
      '--platform', `manylinux_2_27_${plat}`, '--platform', `manylinux2014_${plat}`, '-d', dir],
  ];
  const failures: string[] = [];
  let sawPip = false;
  for (const { cmd, pre } of pipCandidates()) {
    for (const args of attempts) {
      log(`  $ ${[cmd, ...pre, ...args].join(' ')}`);
      const r = tryRun(cmd, [...pre, ...args]);
      if (r.missing) break;
      if (!r.ok && /No module named pip/.test(r.output)) break;
      sawPip = true;
      const got = findWheelIn(dir, pkg, version);
      if (r.ok && got) return got;
      failures.push(`${[cmd, ...pre, ...args].join(' ')}\n${lastLines(r.output, 6)}`);
    }
    if (sawPip) break;
  }
  if (!sawPip) {
    throw new Error(
      'No pip found (tried $PIP, pip3, pip, python3 -m pip, python -m pip). Install Python 3 with pip ' +
        '(Debian/Ubuntu: apt-get install python3-pip), or download the wheel yourself ' +
        `(${spec}, a manylinux x86_64/aarch64 .whl from https://pypi.org/project/${pkg}/#files) and pass --wheel <file>.`,
    );
  }
  throw new Error(
    `pip could not download ${spec}. Check network/proxy or your pip index configuration, or pass --wheel <file>.\n` +
      failures.join('\n---\n'),
  );
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).map((l) => `    ${l}`).join('\n');
}

/**
 * Opens a wheel and checks it is a Linux TensorFlow wheel with the C API in the layout we rely on;
 * every failure names the wheel and what was expected.
 */
export async function inspectWheel(file: string): Promise<{ info: WheelInfo; zip: ZipArchive; record: Map<string, string> }> {
  if (!fs.existsSync(file)) throw new Error(`wheel not found: ${file}`);
  if (!file.endsWith('.whl')) throw new Error(`${file}: expected a Python wheel (.whl) of tensorflow or tensorflow-cpu`);
  const zip = await openZip(file);
  try {
    const distInfo = [...zip.entries.keys()].find((n) => /^[^/]+\.dist-info\/METADATA$/.test(n));
    if (!distInfo) throw new Error(`${file}: no *.dist-info/METADATA: not a wheel`);
    const meta = await zip.readText(distInfo);
    const name = /^Name: (.+)$/m.exec(meta)?.[1].trim() ?? '';
    const version = /^Version: (.+)$/m.exec(meta)?.[1].trim() ?? '';
    if (!/^tensorflow([-_](cpu|gpu|intel))?$/i.test(name)) {
      throw new Error(`${file}: wheel is '${name} ${version}', expected tensorflow-cpu (or tensorflow) 2.x`);
    }
    if (!/^2\./.test(version)) throw new Error(`${file}: TensorFlow ${version}; expected a 2.x wheel`);
    const platform = path.basename(file, '.whl').split('-').pop() ?? '';
    if (!/linux/.test(platform)) {
      throw new Error(`${file}: platform tag '${platform}'; only Linux (manylinux) wheels ship libtensorflow_cc.so.2`);
    }
    const archOk = process.arch === 'x64' ? /x86_64/.test(platform) : process.arch === 'arm64' ? /aarch64/.test(platform) : false;
    if (!archOk) throw new Error(`${file}: platform '${platform}' does not match this machine (${process.arch})`);
    const required = [...WHEEL_LIBS, `${WHEEL_INCLUDE_ROOT}tensorflow/c/c_api.h`, `${WHEEL_INCLUDE_ROOT}tensorflow/c/eager/c_api.h`];
    const missing = required.filter((r) => !zip.entries.has(r));
    if (missing.length) {
      throw new Error(
        `${file}: unexpected wheel layout, missing ${missing.join(', ')}. This script knows the TF 2.x ` +
          'layout (tensorflow/libtensorflow_cc.so.2 + tensorflow/include/); a newer TensorFlow may have moved them.',
      );
    }
    const recordName = distInfo.replace(/METADATA$/, 'RECORD');
    const record = new Map<string, string>();
    if (zip.entries.has(recordName)) {
      for (const line of (await zip.readText(recordName)).split('\n')) {
        const [f, h] = line.split(',');
        if (f && h?.startsWith('sha256=')) record.set(f, h.slice('sha256='.length));
      }
    }
    return { info: { file, name, version, platform }, zip, record };
  } catch (err) {
    zip.close();
    throw err;
  }
}

const INCLUDE_RE = /^\s*#\s*include\s*[<"]([^>"]+)[>"]/gm;

/**
 * The headers the addon needs: the transitive closure of `seeds` over #include lines, resolved inside
 * the wheel's include tree. The tree is 268 MB (all of TF, XLA, Eigen, abseil); the C API needs a few
 * dozen files. System headers (not in the wheel) are left to the compiler.
 */
export async function headerClosure(zip: ZipArchive, seeds: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const queue = [...seeds];
  while (queue.length) {
    const rel = queue.shift() as string;
    if (seen.has(rel)) continue;
    seen.add(rel);
    const text = await zip.readText(WHEEL_INCLUDE_ROOT + rel);
    for (const m of text.matchAll(INCLUDE_RE)) {
      const inc = path.posix.normalize(m[1]);
      const candidates = [inc, path.posix.join(path.posix.dirname(rel), inc)];
      const hit = candidates.find((c) => zip.entries.has(WHEEL_INCLUDE_ROOT + c));
      if (hit && !seen.has(hit)) queue.push(hit);
    }
  }
  return [...seen].sort();
}

/** `#include "tensorflow/..."` lines of the addon's own sources: the seeds of the header closure. */
export function bindingIncludes(bindingDir: string): string[] {
  const out = new Set<string>();
  for (const f of fs.readdirSync(bindingDir)) {
    if (!/\.(cc|h)$/.test(f)) continue;
    for (const m of fs.readFileSync(path.join(bindingDir, f), 'utf8').matchAll(INCLUDE_RE)) {
      if (m[1].startsWith('tensorflow/')) out.add(m[1]);
    }
  }
  return [...out].sort();
}
