import * as fs from 'fs';
import * as path from 'path';

/**
 * The project root, found by walking up from this file to our package.json. Works from `src/` under
 * ts-node and from `build/src/` when notebooks import the compiled package.
 */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'copycat-cnn') return dir;
      } catch {
        /* unreadable package.json: keep walking */
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`copycat-cnn package.json not found above ${__dirname}`);
    dir = parent;
  }
}

/** Where downloads, caches and runs live: $COPYCAT_DATA_DIR or <root>/data. */
export function dataDir(): string {
  return process.env.COPYCAT_DATA_DIR ? path.resolve(process.env.COPYCAT_DATA_DIR) : path.join(projectRoot(), 'data');
}

/**
 * An optional offline mirror of the official datasets ($COPYCAT_MIRROR_DIR). Never a hard-coded
 * path: users with internet download from the official URLs.
 */
export function mirrorDir(): string | undefined {
  const m = process.env.COPYCAT_MIRROR_DIR;
  return m ? path.resolve(m) : undefined;
}

export function ensureDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
