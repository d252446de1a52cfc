/**
 * Compiles tfjs-node's addon (binding/*.cc, unchanged) with node-gyp against the wheel's C API. The
 * build runs in a staging copy inside the cache, not in node_modules, so `npm ci` cannot lose it and
 * node_modules never holds a half-built tree.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { symlinkForce, TfjsNodePackage } from './addon';

function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/**
 * node-gyp's CLI script: $NODE_GYP / npm_config_node_gyp if set, a local install, else the copy bundled
 * with npm (every Node install has one, beside the npm on PATH or the node binary).
 */
export function locateNodeGyp(projectDir: string): string {
  const candidates: string[] = [];
  for (const env of [process.env.NODE_GYP, process.env.npm_config_node_gyp]) if (env) candidates.push(env);
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [projectDir] }));
  } catch {
    /* not a local dependency */
  }
  const npm = which('npm');
  if (npm) candidates.push(path.join(path.dirname(fs.realpathSync(npm)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const hit = candidates.find((c) => fs.existsSync(c));
  if (!hit) {
    throw new Error(`node-gyp not found (tried ${candidates.join(', ')}). Install it: npm install -g node-gyp, or set NODE_GYP=<path to node-gyp.js>`);
  }
  return hit;
}

/**
 * Node's own headers when they are installed beside the binary (Debian/NodeSource packages, nvm):
 * without --nodedir node-gyp would try to download them, which fails offline.
 */
export function localNodeDir(): string | undefined {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

/** Fails early, naming the missing tool, instead of letting node-gyp fail deep inside gyp or make. */
export function checkToolchain(): void {
  const missing: string[] = [];
  if (!which(process.env.CXX ?? 'c++') && !which('g++') && !which('clang++')) missing.push('a C++ compiler (g++ or clang++)');
  if (!which('make')) missing.push('make');
  if (!which(process.env.PYTHON ?? 'python3') && !which('python')) missing.push('python3 (node-gyp runs gyp with it)');
  if (missing.length) {
    throw new Error(
      `Cannot build the tfjs-node addon: missing ${missing.join(', ')}. Debian/Ubuntu: apt-get install build-essential python3; ` +
        'Fedora: dnf install gcc-c++ make python3.',
    );
  }
}

export interface BuildResult {
  addon: string;
  seconds: number;
  log: string;
}

/**
 * Builds the addon in `stagingDir` (binding.gyp and binding/ copied from the package, deps/ pointing at
 * the extracted wheel files) and returns the path of the built tfjs_binding.node.
 */
export function buildAddon(pkg: TfjsNodePackage, libDir: string, includeDir: string, stagingDir: string, log = console.log): BuildResult {
  checkToolchain();
  const nodeGyp = locateNodeGyp(path.dirname(pkg.dir));
  fs.rmSync(stagingDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(stagingDir, 'deps'), { recursive: true });
  fs.copyFileSync(path.join(pkg.dir, 'binding.gyp'), path.join(stagingDir, 'binding.gyp'));
  fs.cpSync(path.join(pkg.dir, 'binding'), path.join(stagingDir, 'binding'), { recursive: true });
  symlinkForce(libDir, path.join(stagingDir, 'deps', 'lib'));
  symlinkForce(includeDir, path.join(stagingDir, 'deps', 'include'));

  const moduleDir = path.join(stagingDir, 'lib', `napi-v${pkg.napiVersion}`);
  const nodeDir = localNodeDir();
  const common = nodeDir ? [`--nodedir=${nodeDir}`] : [];
  // The variables node-pre-gyp would pass; binding.gyp's copy step and NAPI_VERSION define need them.
  const gypVars = ['-Dmodule_name=tfjs_binding', `-Dmodule_path=${moduleDir}`, `-Dnapi_build_version=${pkg.napiVersion}`];
  const started = Date.now();
  let out = '';
  for (const args of [['configure', ...common, '--', ...gypVars], ['build', ...common, '--jobs', 'max']]) {
    log(`  $ node ${path.basename(nodeGyp)} ${args.join(' ')}`);
    const r = spawnSync(process.execPath, [nodeGyp, ...args], { cwd: stagingDir, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
    out += `${r.stdout ?? ''}${r.stderr ?? ''}`;
    if (r.error || r.status !== 0) {
      const logFile = path.join(stagingDir, 'build-error.log');
      fs.writeFileSync(logFile, out);
      const hint = /download|ENOTFOUND|EAI_AGAIN|getaddrinfo/.test(out)
        ? ' node-gyp tried to download Node headers: install them (e.g. the nodejs-dev / libnode-dev package) or set npm_config_nodedir.'
        : '';
      throw new Error(
        `node-gyp ${args[0]} failed (exit ${r.status ?? r.error?.message}).${hint} Full log: ${logFile}\n` +
          out.trim().split('\n').slice(-15).join('\n'),
      );
    }
  }
  const addon = path.join(stagingDir, 'build', 'Release', 'tfjs_binding.node');
  if (!fs.existsSync(addon)) throw new Error(`node-gyp reported success but ${addon} does not exist`);
  return { addon, seconds: (Date.now() - started) / 1000, log: out };
}
