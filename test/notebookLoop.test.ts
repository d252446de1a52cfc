import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { requireVenvTool } from './jupyterFixture';
import { tmpDir } from './oracleFixtures';
import { npdFolder, tinyOverrides } from './stepFixtures';

/**
 * The researcher's loop through the real notebooks and the tslab kernel: 01-03 on a run folder, then 03
 * again on the same folder with one copycat setting changed (as a user edits OVERRIDES, here through
 * $COPYCAT_OVERRIDES). The second 03 must train a new copycat from scratch and read the oracle and the
 * stolen labels as they were. Needs the project venv (`npm run lab:setup`); skipped with a reason
 * without it unless COPYCAT_REQUIRE_JUPYTER=1.
 */

const ROOT = path.resolve(__dirname, '..');

interface Output { text?: string | string[]; data?: Record<string, string | string[]> }
const str = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : v ?? '');

function notebookText(file: string): string {
  const cells = JSON.parse(fs.readFileSync(file, 'utf8')).cells as { outputs?: Output[] }[];
  return cells.flatMap((c) => c.outputs ?? []).map((o) => str(o.text) + str(o.data?.['text/plain'])).join('\n');
}

describe('notebook loop: change a copycat parameter in 03 and re-run it (tslab kernel)', function () {
  this.timeout(900_000);
  let tmp = '';

  before(function () {
    requireVenvTool(this, 'jupyter', 'notebook loop test');
    tmp = tmpDir('nb-loop');
  });

  function runNotebooks(names: string[], overrides: object, out: string, env: Record<string, string> = {}) {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'python', path.join(ROOT, 'scripts/run-notebooks.py'),
      ...names.map((n) => path.join(ROOT, 'notebooks', `${n}.ipynb`)), '--profile', 'smoke', '--run-dir', path.join(tmp, 'run'),
      '--out', path.join(tmp, out), '--timeout', '600', '--env', `COPYCAT_OVERRIDES=${JSON.stringify(overrides)}`], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, COPYCAT_JUPYTER_DIR: path.join(tmp, 'jupyter'), COPYCAT_PROGRESS: '', ...env },
    });
    assert.equal(r.status, 0, `run-notebooks failed:\n${r.stdout}\n${r.stderr}`);
  }

  it('retrains only the copycat, from epoch 1, and reuses the oracle and stolen labels', async () => {
    const npd = await npdFolder(96);
    const sets = { copycat: { sets: ['NPD-SL'] } };
    const first = { ...tinyOverrides(npd, 1), ...sets, copycat: { ...tinyOverrides(npd, 1).copycat, ...sets.copycat } };
    const second = { ...first, copycat: { ...tinyOverrides(npd, 2).copycat, ...sets.copycat } };
    runNotebooks(['01_oracle', '02_npd_labeling', '03_copycat'], first, 'first');
    assert.match(notebookText(path.join(tmp, 'first', '03_copycat.ipynb')), /copycat NPD-SL: first variant in this run \(key [0-9a-f]{12}\): training/);
    runNotebooks(['02_npd_labeling', '03_copycat'], second, 'second');
    assert.match(notebookText(path.join(tmp, 'second', '02_npd_labeling.ipynb')), /stolen NPD-SL: reused \(key/);
    const third = notebookText(path.join(tmp, 'second', '03_copycat.ipynb'));
    assert.match(third, /copycat NPD-SL: new settings \(copycat\.train\.epochs 1 → 2; key [0-9a-f]{12}\): training/);
    assert.doesNotMatch(third, /Resumed from|already trained/);
    const run = path.join(tmp, 'run');
    const copies = fs.readdirSync(path.join(run, 'copycats', 'NPD-SL'));
    assert.equal(copies.length, 2, `two copycat variants side by side, got ${copies.join(', ')}`);
    const epochs = copies.map((k) => JSON.parse(fs.readFileSync(path.join(run, 'copycats', 'NPD-SL', k, 'result.json'), 'utf8')).history.map((h: { epoch: number }) => h.epoch));
    assert.deepEqual(epochs.sort((a, b) => a.length - b.length), [[1], [1, 2]]);
    assert.equal(fs.readdirSync(path.join(run, 'oracle')).length, 1, 'one oracle: reused, not retrained');
  });

  it('02 with STEAL labels NPD images against another black box and takes its set as NPD-SL', async () => {
    const run = path.join(tmp, 'run');
    const oracleKey = fs.readdirSync(path.join(run, 'oracle'))[0];
    const out = path.join(tmp, 'outside', 'stolen.json');
    const steal = { source: await npdFolder(40), oracle: `local:${path.join(run, 'oracle', oracleKey, 'model')}`, out, images: 40 };
    runNotebooks(['02_npd_labeling'], { ...tinyOverrides(steal.source, 1), copycat: { sets: ['NPD-SL'] } }, 'steal', { COPYCAT_STEAL: JSON.stringify(steal) });
    const text = notebookText(path.join(tmp, 'steal', '02_npd_labeling.ipynb'));
    assert.match(text, /"labeled":40/);
    assert.match(text, new RegExp(`stolen NPD-SL: 40 labels from ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(answered by `));
    assert.ok(fs.existsSync(out));
  });
});
