import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Native-backend checks run in a child process: once tfjs-node is loaded it becomes the default
 * backend of the process, and the other tests must keep running on the pure-JS reference backend.
 */
export const ROOT = path.resolve(__dirname, '..');

export function runChild(code: string, env: Record<string, string> = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...env },
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Where node-pre-gyp expects the tfjs-node addon (built by npm run setup:tensorflow), if tfjs-node is installed. */
export function nativeAddonPath(): string | undefined {
  try {
    const pkgJson = require.resolve('@tensorflow/tfjs-node/package.json', { paths: [ROOT] });
    const preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [pkgJson] })) as { find(p: string): string };
    return preGyp.find(pkgJson);
  } catch {
    return undefined;
  }
}

/** The JSON a child printed on its '@@' line. */
export function childResult<T>(r: { stdout: string; stderr: string }): T {
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@'));
  if (!line) throw new Error(`child printed no result:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(2)) as T;
}

/**
 * Skips the calling test (with the reason printed) when the tfjs-node addon is not built; under
 * COPYCAT_REQUIRE_NATIVE=1 (CI) that is a failure instead.
 */
export function skipUnlessNative(test: Mocha.Context): void {
  const addon = nativeAddonPath();
  if (addon && fs.existsSync(addon)) return;
  const reason = `no tfjs-node addon at ${addon ?? '(tfjs-node not installed)'}; run npm run setup:tensorflow`;
  if (process.env.COPYCAT_REQUIRE_NATIVE === '1') assert.fail(`COPYCAT_REQUIRE_NATIVE=1 but ${reason}`);
  console.log(`      SKIPPED native test: ${reason}`);
  test.skip();
}
