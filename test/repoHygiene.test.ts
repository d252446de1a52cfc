import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Git holds code, JSON records and small reference files: a clone must not download weights or
 * checkpoints (they live in gitignored data/, or in history only: `npm run run-archive -- slim`).
 */

const ROOT = path.resolve(__dirname, '..');
/** 2 MiB. */
const LIMIT = 2 * 1024 * 1024;
/** Named exceptions, each with its reason. */
const ALLOWED: Record<string, string> = {
  'package-lock.json': 'the lockfile pins every dependency',
};
const FIGURE = /^docs\/figures\/[^/]+\.png$/;

describe('repository hygiene', () => {
  it(`tracks no file over ${LIMIT / 1024 / 1024} MiB (lockfile and docs/figures/*.png excepted)`, function () {
    const r = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) {
      // A copy without .git (an npm pack, an unpacked tarball) has no tracked files to check.
      console.log(`      SKIPPED: not a git clone (${r.stderr.trim()})`);
      this.skip();
    }
    const big = r.stdout.split('\0').filter(Boolean)
      .filter((f) => fs.existsSync(path.join(ROOT, f)))
      .map((f) => ({ f, bytes: fs.statSync(path.join(ROOT, f)).size }))
      .filter(({ f, bytes }) => bytes > LIMIT && !(f in ALLOWED) && !FIGURE.test(f));
    assert.deepEqual(big.map(({ f, bytes }) => `${f} (${(bytes / 1024 / 1024).toFixed(1)} MiB)`), [],
      'move weights and checkpoints out of the tree (data/ is gitignored; run-archive slim keeps archived ones in history)');
  });
});
