import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tempDir } from './tempDirs';

/**
 * `npm run lab` (scripts/lab.sh) checks the run folder it is given before it builds or starts anything, and
 * takes it as --run or --run-dir (the experiment and steal scripts' name for it), so a researcher who types
 * either gets the run, or an error naming the folder, not a Jupyter started on something else.
 */
describe('npm run lab (scripts/lab.sh)', () => {
  const ROOT = path.resolve(__dirname, '..');
  const lab = (args: string[], cwd: string) => spawnSync('bash', [path.join(ROOT, 'scripts/lab.sh'), ...args], {
    encoding: 'utf8', timeout: 20_000, env: { ...process.env, INIT_CWD: cwd, COPYCAT_DATA_DIR: path.join(cwd, 'data') },
  });

  for (const flag of ['--run', '--run-dir']) {
    it(`names a missing or non-run folder given as ${flag} DIR or ${flag}=DIR`, () => {
      const cwd = tempDir('lab-');
      fs.mkdirSync(path.join(cwd, 'data/runs/notarun'), { recursive: true });
      fs.mkdirSync(path.join(cwd, 'data/runs/r1'), { recursive: true });
      fs.writeFileSync(path.join(cwd, 'data/runs/r1/config.json'), '{"profile":"smoke"}');
      const missing = lab([flag, 'data/runs/gone'], cwd);
      assert.equal(missing.status, 2, missing.stderr);
      assert.match(missing.stderr, /--run data\/runs\/gone: no such folder/);
      const notRun = lab([`${flag}=data/runs/notarun`], cwd);
      assert.equal(notRun.status, 2, notRun.stderr);
      assert.match(notRun.stderr, /is not a run folder \(no config\.json.*Runs in .*: r1/);
    });
  }

  it('asks for the folder when the flag ends the command line', () => {
    const r = lab(['--run-dir'], tempDir('lab-'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--run-dir needs a run folder/);
  });
});
