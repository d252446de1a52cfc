/**
 * npm run setup:tensorflow [-- --force] [-- --wheel <file.whl>]
 *
 * Gives @tensorflow/tfjs-node a working native addon without Google's libtensorflow download (gone
 * for new versions, unreachable offline): the TensorFlow C API is taken from the tensorflow-cpu Python
 * wheel and tfjs-node's unchanged binding sources are compiled against it. Everything expensive is
 * cached under data/cache/tensorflow, so after `npm ci` a rerun is a link/copy plus a check.
 * See environment.md.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { dataDir, projectRoot } from '../src/paths';
import { installInto, locateTfjsNode, TfjsNodePackage, writeLinkerNames } from './tensorflow/addon';
import { buildAddon } from './tensorflow/build';
import { verifyAddon, VerifyResult } from './tensorflow/verify';
import {
  bindingIncludes,
  DEFAULT_TF_PACKAGE,
  DEFAULT_TF_VERSION,
  downloadWheel,
  headerClosure,
  inspectWheel,
  WHEEL_INCLUDE_ROOT,
  WHEEL_LIBS,
} from './tensorflow/wheel';

const USAGE = `Usage: npm run setup:tensorflow -- [options]
  --force              rebuild even if a working addon or a cached build exists
  --wheel <file.whl>   use this TensorFlow wheel instead of downloading ${DEFAULT_TF_PACKAGE}==${DEFAULT_TF_VERSION}
  --tf-package <name>  wheel to download (default ${DEFAULT_TF_PACKAGE}; 'tensorflow' is the CUDA-capable one, untested)
  --tf-version <ver>   (default ${DEFAULT_TF_VERSION})
  --package <name>     npm package to give the addon (default @tensorflow/tfjs-node; @tensorflow/tfjs-node-gpu untested)
  --check              only report whether the installed addon works (exit 0/1), change nothing`;

export interface SetupOptions {
  force: boolean;
  wheel?: string;
  tfPackage: string;
  tfVersion: string;
  npmPackage: string;
  check: boolean;
}

export function parseArgs(argv: string[]): SetupOptions {
  const o: SetupOptions = { force: false, tfPackage: DEFAULT_TF_PACKAGE, tfVersion: DEFAULT_TF_VERSION, npmPackage: '@tensorflow/tfjs-node', check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--force') o.force = true;
    else if (a === '--check') o.check = true;
    else if (a === '--wheel') o.wheel = path.resolve(value());
    else if (a === '--tf-package') o.tfPackage = value();
    else if (a === '--tf-version') o.tfVersion = value();
    else if (a === '--package') o.npmPackage = value();
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

/** What a finished extraction / build left in the cache (written last, so its presence means complete). */
interface Manifest {
  wheel: { file: string; name: string; version: string; platform: string; sha256: string };
  headers: number;
  addons: Record<string, { path: string; builtAt: string; buildSeconds: number }>;
}

interface Current {
  libsDir: string;
}

const log = (msg: string): void => console.log(msg);

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(`${file}.tmp`, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

/**
 * Cache key of a compiled addon. It includes a digest of the binding sources because
 * patches/@tensorflow+tfjs-node+4.22.0.patch changes them: a build of the unpatched sources must not be
 * reused.
 */
function addonKey(pkg: TfjsNodePackage): string {
  const h = crypto.createHash('sha256');
  const dir = path.join(pkg.dir, 'binding');
  for (const f of fs.readdirSync(dir).sort()) h.update(f).update(fs.readFileSync(path.join(dir, f)));
  return `${pkg.name.replace('@tensorflow/', '')}-${pkg.version}/napi-v${pkg.napiVersion}-src-${h.digest('hex').slice(0, 12)}`;
}

async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function describe(v: VerifyResult): string {
  return `backend=${v.backend} libtensorflow=${v.tfVersion} tfjs-node=${v.tfjsNode} gpu=${v.gpu}` +
    (v.fusedConv !== undefined ? ` fused-conv=${v.fusedConv ? 'yes' : `no (${v.fusedConvError})`}` : '') +
    (v.losses ? ` tiny-net loss ${v.losses[0].toFixed(3)} -> ${v.losses[v.losses.length - 1].toFixed(3)}` : '') +
    (v.loadSeconds !== undefined ? ` (load ${v.loadSeconds.toFixed(1)} s)` : '');
}

function finish(pkg: TfjsNodePackage, root: string): void {
  const v = verifyAddon(root, 'full', pkg.name);
  if (!v.ok) {
    throw new Error(
      `the addon was installed at ${pkg.bindingPath} but does not work: ${v.error}\n` +
        'Rerun with --force to rebuild; see environment.md#troubleshooting.',
    );
  }
  log(`OK ${describe(v)}`);
}

/** Extracts the two libraries (checked against the wheel's RECORD) and the C API header closure. */
async function extractWheel(wheelFile: string, libsDir: string, pkg: TfjsNodePackage): Promise<Manifest> {
  const t0 = Date.now();
  const { info, zip, record } = await inspectWheel(wheelFile);
  try {
    log(`  wheel: ${info.name} ${info.version} (${info.platform})`);
    const sha256 = await sha256File(wheelFile);
    const old = readJson<Manifest>(path.join(libsDir, 'manifest.json'));
    if (old && old.wheel.sha256 === sha256 && WHEEL_LIBS.every((l) => fs.existsSync(path.join(libsDir, 'lib', path.basename(l))))) {
      log('  libraries and headers already extracted from this wheel');
      return old;
    }
    fs.rmSync(path.join(libsDir, 'manifest.json'), { force: true });
    for (const lib of WHEEL_LIBS) {
      log(`  extracting ${lib} (${(zip.entries.get(lib)!.uncompressedSize / 1e6).toFixed(0)} MB)`);
      const digest = await zip.extractTo(lib, path.join(libsDir, 'lib', path.basename(lib)));
      const expected = record.get(lib);
      if (expected && expected !== digest) {
        throw new Error(`${wheelFile}: ${lib} does not match the wheel's RECORD hash: corrupt wheel, delete it and rerun`);
      }
      if (!expected) log(`  warning: wheel RECORD has no hash for ${lib}; integrity not checked`);
    }
    writeLinkerNames(path.join(libsDir, 'lib'));
    const headers = await headerClosure(zip, bindingIncludes(path.join(pkg.dir, 'binding')));
    fs.rmSync(path.join(libsDir, 'include'), { recursive: true, force: true });
    for (const h of headers) await zip.extractTo(WHEEL_INCLUDE_ROOT + h, path.join(libsDir, 'include', h));
    log(`  ${headers.length} C API headers extracted; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const manifest: Manifest = { wheel: { file: wheelFile, name: info.name, version: info.version, platform: info.platform, sha256 }, headers: headers.length, addons: {} };
    writeJson(path.join(libsDir, 'manifest.json'), manifest);
    return manifest;
  } finally {
    zip.close();
  }
}

export async function setupTensorflow(opts: SetupOptions): Promise<void> {
  const started = Date.now();
  const root = projectRoot();
  const pkg = locateTfjsNode(root, opts.npmPackage);
  const cacheRoot = path.join(dataDir(), 'cache', 'tensorflow');
  const key = addonKey(pkg);
  log(`setup:tensorflow for ${pkg.name} ${pkg.version} (addon ${path.relative(root, pkg.bindingPath)}), cache ${cacheRoot}`);

  // 1. A working addon is already in place: nothing to do.
  if (opts.check || (!opts.force && !opts.wheel)) {
    if (fs.existsSync(pkg.bindingPath)) {
      const v = verifyAddon(root, 'quick', pkg.name);
      if (v.ok && (v.fusedConv || opts.check)) {
        log(`already working: ${describe(v)}; nothing to do (--force rebuilds) [${((Date.now() - started) / 1000).toFixed(1)} s]`);
        return;
      }
      if (v.ok) {
        log(`installed addon works but predates the binding patch (list attributes: ${v.fusedConvError}); rebuilding`);
      } else {
        if (opts.check) throw new Error(`installed addon does not work: ${v.error}`);
        log(`installed addon does not work (${v.error?.split('\n')[0]}); repairing`);
      }
    } else if (opts.check) {
      throw new Error(`no addon at ${pkg.bindingPath}: run npm run setup:tensorflow`);
    }
  }

  // 2. A cached build for this tfjs-node version and N-API level: link it in (the after-`npm ci` path).
  const current = readJson<Current>(path.join(cacheRoot, 'current.json'));
  if (!opts.force && !opts.wheel && current) {
    const manifest = readJson<Manifest>(path.join(current.libsDir, 'manifest.json'));
    const cached = manifest?.addons[key];
    if (cached && fs.existsSync(cached.path)) {
      log(`installing the cached build from ${current.libsDir}`);
      const { how } = installInto(pkg, path.join(current.libsDir, 'lib'), cached.path);
      log(`  ${how === 'link' ? 'hard-linked' : 'copied'} libraries and addon into ${path.relative(root, pkg.dir)}`);
      finish(pkg, root);
      log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return;
    }
  }

  // 3. Full route: wheel -> extract -> compile -> install -> verify.
  log('1/4 TensorFlow wheel');
  const wheelFile = opts.wheel ?? downloadWheel(path.join(cacheRoot, 'wheels'), opts.tfPackage, opts.tfVersion, log);
  log(`  ${wheelFile}`);
  const stem = path.basename(wheelFile, '.whl').split('-');
  const libsDir = path.join(cacheRoot, `${stem[0]}-${stem[1]}-${stem[stem.length - 1]}`);
  log('2/4 extract the C API');
  const manifest = await extractWheel(wheelFile, libsDir, pkg);
  log('3/4 compile the addon (node-gyp; about a minute or two)');
  const built = buildAddon(pkg, path.join(libsDir, 'lib'), path.join(libsDir, 'include'), path.join(libsDir, 'build', key), log);
  const cachedAddon = path.join(libsDir, 'addon', key, 'tfjs_binding.node');
  fs.mkdirSync(path.dirname(cachedAddon), { recursive: true });
  fs.copyFileSync(built.addon, `${cachedAddon}.tmp`);
  fs.renameSync(`${cachedAddon}.tmp`, cachedAddon);
  log(`  built in ${built.seconds.toFixed(0)} s`);
  log('4/4 install and verify');
  const { how } = installInto(pkg, path.join(libsDir, 'lib'), cachedAddon);
  log(`  ${how === 'link' ? 'hard-linked' : 'copied'} libraries and addon into ${path.relative(root, pkg.dir)}`);
  finish(pkg, root);
  manifest.addons[key] = { path: cachedAddon, builtAt: new Date().toISOString(), buildSeconds: built.seconds };
  writeJson(path.join(libsDir, 'manifest.json'), manifest);
  writeJson(path.join(cacheRoot, 'current.json'), { libsDir } satisfies Current);
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  let opts: SetupOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
  setupTensorflow(opts).catch((err: Error) => {
    console.error(`\nsetup:tensorflow failed: ${err.message}`);
    process.exit(1);
  });
}
