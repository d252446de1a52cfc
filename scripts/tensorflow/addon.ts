/**
 * Where tfjs-node keeps its native addon and libraries, and how our cached build is put there.
 * tfjs-node's loader asks @mapbox/node-pre-gyp `find` for lib/napi-v<N>/tfjs_binding.node, and the
 * addon finds libtensorflow through its rpath $ORIGIN/../../deps/lib (both fixed by binding.gyp).
 */
import * as fs from 'fs';
import * as path from 'path';

export interface TfjsNodePackage {
  dir: string;
  name: string;
  version: string;
  /** Absolute path tfjs-node will load the addon from. */
  bindingPath: string;
  /** N-API version node-pre-gyp chose for this Node (the N in napi-vN). */
  napiVersion: number;
}

/** Locates an installed tfjs-node (or tfjs-node-gpu) from `fromDir` and asks node-pre-gyp where its addon goes. */
export function locateTfjsNode(fromDir: string, pkgName = '@tensorflow/tfjs-node'): TfjsNodePackage {
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${pkgName}/package.json`, { paths: [fromDir] });
  } catch {
    throw new Error(
      `${pkgName} is not installed under ${fromDir}/node_modules. It is an optional dependency: run ` +
        `'npm install' (its own install script may fail or be denied; that is fine, this setup replaces it).`,
    );
  }
  const dir = path.dirname(pkgJson);
  const pkg = JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { name: string; version: string };
  let preGyp: { find(p: string): string };
  try {
    preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [dir] })) as { find(p: string): string };
  } catch {
    throw new Error(`@mapbox/node-pre-gyp (a dependency of ${pkgName}) is missing: reinstall ${pkgName}`);
  }
  const bindingPath = preGyp.find(pkgJson);
  const napi = /napi-v(\d+)/.exec(bindingPath);
  if (!napi) throw new Error(`${pkgName}: unexpected addon path from node-pre-gyp: ${bindingPath}`);
  return { dir, name: pkg.name, version: pkg.version, bindingPath, napiVersion: Number(napi[1]) };
}

/**
 * Hard-links (same file system: instant, no extra disk for 850 MB of libraries) or else copies.
 * Replaces `dest` atomically.
 */
export function linkOrCopy(src: string, dest: string): 'link' | 'copy' {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  let how: 'link' | 'copy' = 'link';
  try {
    fs.linkSync(src, tmp);
  } catch {
    fs.copyFileSync(src, tmp);
    how = 'copy';
  }
  fs.renameSync(tmp, dest);
  return how;
}

export function symlinkForce(target: string, linkPath: string): void {
  fs.rmSync(linkPath, { force: true });
  fs.symlinkSync(target, linkPath);
}

/**
 * The linker names binding.gyp asks for (-ltensorflow -ltensorflow_framework) plus the soname-style
 * alias tfjs-node's own installer creates. All point at the wheel's files; the addon records the
 * targets' sonames (libtensorflow_cc.so.2, libtensorflow_framework.so.2) as what it needs at run time.
 */
export function writeLinkerNames(libDir: string): void {
  symlinkForce('libtensorflow_cc.so.2', path.join(libDir, 'libtensorflow.so'));
  symlinkForce('libtensorflow_cc.so.2', path.join(libDir, 'libtensorflow.so.2'));
  symlinkForce('libtensorflow_framework.so.2', path.join(libDir, 'libtensorflow_framework.so'));
}

/** Puts the cached libraries and addon where tfjs-node loads them from. */
export function installInto(pkg: TfjsNodePackage, cachedLibDir: string, cachedAddon: string): { how: 'link' | 'copy' } {
  const depsLib = path.join(pkg.dir, 'deps', 'lib');
  fs.mkdirSync(depsLib, { recursive: true });
  let how: 'link' | 'copy' = 'link';
  for (const f of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) {
    if (linkOrCopy(path.join(cachedLibDir, f), path.join(depsLib, f)) === 'copy') how = 'copy';
  }
  writeLinkerNames(depsLib);
  linkOrCopy(cachedAddon, pkg.bindingPath);
  return { how };
}
