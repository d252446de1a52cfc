import { strict as assert } from 'assert';
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { requireVenvTool, VENV } from './jupyterFixture';
import { notebookJson } from './notebookFixture';

/**
 * End-to-end: registers the tslab kernelspec in a temporary prefix (never the user's), executes tiny
 * notebooks headlessly through scripts/run-notebooks.py, and checks outputs and failure reporting.
 * Needs the project venv (`npm run lab:setup`); skipped with a reason without it unless
 * COPYCAT_REQUIRE_JUPYTER=1.
 */

const ROOT = path.resolve(__dirname, '..');

interface Cell { cell_type: string; source: string; outputs?: Output[] }
interface Output { output_type: string; name?: string; text?: string | string[]; data?: Record<string, string | string[]> }

/** nbformat may store multi-line strings as arrays of lines. */
const str = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : v ?? '');

const notebook = notebookJson;

// Loads our TypeScript sources in the kernel through ts-node, so this test needs no `npm run build`;
// the real notebooks import the compiled build/ instead.
const LOAD_SRC = `require(${JSON.stringify(path.join(ROOT, 'node_modules/ts-node'))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(ROOT, 'tsconfig.json'))} });
const src = (m: string) => require(${JSON.stringify(path.join(ROOT, 'src'))} + '/' + m + '.ts');`;

describe('notebook kernel (tslab via nbclient)', function () {
  this.timeout(120_000);
  let tmp = '';

  before(function () {
    requireVenvTool(this, 'jupyter', 'notebook kernel tests');
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-kernel-'));
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  function runNotebooks(files: string[], extraEnv: Record<string, string> = {}) {
    return spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'python', path.join(ROOT, 'scripts/run-notebooks.py'),
      ...files, '--build', 'never', '--out', path.join(tmp, 'out'), '--run-dir', path.join(tmp, 'run'), '--timeout', '60'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, COPYCAT_JUPYTER_DIR: path.join(tmp, 'jupyter'), COPYCAT_PROGRESS: '', ...extraEnv },
    });
  }

  it('registers the kernelspec under the given prefix, pointing at this project', () => {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh')], {
      encoding: 'utf8', env: { ...process.env, COPYCAT_JUPYTER_DIR: path.join(tmp, 'jupyter') },
    });
    assert.equal(r.status, 0, r.stderr);
    const spec = JSON.parse(fs.readFileSync(path.join(tmp, 'jupyter/share/jupyter/kernels/tslab/kernel.json'), 'utf8'));
    assert.equal(spec.argv[1], path.join(ROOT, 'node_modules/tslab/bin/tslab'));
    assert.deepEqual(spec.argv.slice(2), ['kernel', '--config-path', '{connection_file}']);
    assert.match(r.stdout, new RegExp(`tslab\\s+${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/jupyter/share/jupyter/kernels/tslab`));
  });

  it('survives eight set-ups started at once on a fresh prefix (lock + per-process temp file)', async () => {
    const prefix = path.join(tmp, 'jupyter-race');
    const runs = await Promise.all(Array.from({ length: 8 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'true'], { env: { ...process.env, COPYCAT_JUPYTER_DIR: prefix } });
      let err = '';
      c.stderr.on('data', (d) => (err += d));
      c.on('close', (code) => resolve({ code, err }));
    })));
    runs.forEach((r, i) => assert.equal(r.code, 0, `set-up ${i}: ${r.err}`));
    const dir = path.join(prefix, 'share/jupyter/kernels/tslab');
    assert.deepEqual(fs.readdirSync(dir), ['kernel.json'], 'no temp files left behind');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'kernel.json'), 'utf8')).argv[1], path.join(ROOT, 'node_modules/tslab/bin/tslab'));
  });

  it('executes a notebook: env parameters, tslab detected, progress as ONE in-place display, tables as markdown', () => {
    const file = path.join(tmp, 'ok.ipynb');
    fs.writeFileSync(file, notebook([
      `console.log('profile=' + process.env.COPYCAT_PROFILE + ' run=' + process.env.COPYCAT_RUN_DIR);`,
      `${LOAD_SRC}\nconst nb = src('display/notebook'); const pr = src('display/progress');\nconsole.log('inNotebook=' + nb.inNotebook());`,
      `const p = pr.progress(500, { label: 'steps' });\nfor (let i = 0; i < 500; i++) { p.tick(1, { loss: 1 / (i + 1) }); }\np.finish();`,
      `nb.showTable([{ model: 'oracle', acc: 0.5 }]);`,
    ]));
    const r = runNotebooks([file], { COPYCAT_PROFILE: 'smoke' });
    assert.equal(r.status, 0, `runner failed:\n${r.stdout}\n${r.stderr}`);
    const cells = (JSON.parse(fs.readFileSync(path.join(tmp, 'out/ok.ipynb'), 'utf8')).cells as Cell[]);
    const text = (c: Cell) => (c.outputs ?? []).map((o) => str(o.text)).join('');
    assert.equal(text(cells[0]).trim(), `profile=smoke run=${path.join(tmp, 'run')}`);
    assert.equal(text(cells[1]).trim(), 'inNotebook=true');
    const prog = cells[2].outputs ?? [];
    assert.equal(prog.length, 1, `progress must be one updated display, got ${JSON.stringify(prog).slice(0, 500)}`);
    assert.match(str(prog[0].data?.['text/plain']), /^steps 500\/500 \(100%\) .* took \d+s loss=0\.002000$/);
    assert.equal(str(cells[3].outputs?.[0].data?.['text/markdown']), '| model | acc |\n| --- | --- |\n| oracle | 0.5000 |');
  });

  it('delivers every message of a cell that never yields to the event loop (tslab patch for zeromq EBUSY)', () => {
    // Unpatched, zeromq 6 defers the 513th send and throws EBUSY for the next one: the stdout lines after
    // ~500 vanished and a display update threw, failing the cell with no error text (issue #6). With sends
    // queued, the iopub PUB socket's high-water mark (1000 by default) dropped the last outputs whenever
    // the frontend fell behind: 6,000 lines lose some every time unless the patch lifts that limit too.
    const file = path.join(tmp, 'flood.ipynb');
    fs.writeFileSync(file, notebook([
      `for (let i = 0; i < 6000; i++) console.log('line ' + i);`,
      `import * as tslab from 'tslab';\nconst d = tslab.newDisplay();\nfor (let i = 0; i < 1500; i++) d.text('update ' + i);\nconsole.log('after the updates');`,
    ]));
    const r = runNotebooks([file]);
    assert.equal(r.status, 0, `runner failed:\n${r.stdout}\n${r.stderr}`);
    const cells = (JSON.parse(fs.readFileSync(path.join(tmp, 'out/flood.ipynb'), 'utf8')).cells as Cell[]);
    const lines = (cells[0].outputs ?? []).map((o) => str(o.text)).join('').split('\n').filter(Boolean);
    assert.deepEqual(lines, Array.from({ length: 6000 }, (_, i) => `line ${i}`));
    const outs = cells[1].outputs ?? [];
    assert.equal(str(outs.find((o) => o.data)?.data?.['text/plain']), 'update 1499');
    assert.equal(outs.filter((o) => o.output_type === 'stream').map((o) => str(o.text)).join(''), 'after the updates\n');
  });

  it('echoes progress bars and step lines to the terminal, named by notebook (a log: sparse lines, no carriage returns)', () => {
    const file = path.join(tmp, '03_echo.ipynb');
    fs.writeFileSync(file, notebook([
      `${LOAD_SRC}\nconst pr = src('display/progress');\nconsole.log('oracle: reused (key 3f2a)');\nconsole.log('| a table | row |');`,
      `const p = pr.progress(30, { label: 'copycat NPD-SL', unit: 'step' });\n` +
        `for (let i = 0; i < 30; i++) { await new Promise((r) => setTimeout(r, 50)); p.tick(1, { epoch: (i < 15 ? 1 : 2) + '/2' }); }\np.finish();`,
    ]));
    const statusFile = path.join(tmp, 'echo-status.json');
    const lines = runNotebooks([file, '--progress', 'lines', '--progress-every', '0', '--status-file', statusFile]);
    assert.equal(lines.status, 0, `runner failed:\n${lines.stdout}\n${lines.stderr}`);
    const status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
    assert.deepEqual([status.exitCode, status.failed, status.notebooks[0].state], [0, null, 'ok']);
    const out = lines.stdout.split('\n');
    assert.ok(out.includes('[03_echo] oracle: reused (key 3f2a)'), lines.stdout);
    assert.ok(!lines.stdout.includes('a table'), 'only step lines are echoed, not every print');
    const bars = out.filter((l) => l.startsWith('[03_echo] copycat NPD-SL '));
    assert.ok(bars.length >= 2, `progress lines:\n${lines.stdout}`);
    assert.ok(bars.some((l) => /^\[03_echo\] copycat NPD-SL \d+\/30 \(\d+%\) .* ETA \d+s epoch=1\/2$/.test(l)), `a line with step, ETA, epoch:\n${lines.stdout}`);
    assert.match(bars[bars.length - 1], /^\[03_echo\] copycat NPD-SL 30\/30 \(100%\) .* took \S+ epoch=2\/2$/);
    assert.ok(!lines.stdout.includes('\r'), 'no carriage returns in a log');
  });

  it('on a tty the echo rewrites one line in place, keeps step lines above it and each finished bar as a line', () => {
    // The tty side of the same echo, fed kernel messages directly (a kernel run costs seconds; the hook
    // that feeds it is covered above).
    const script = `
import io, sys
sys.path.insert(0, ${JSON.stringify(path.join(ROOT, 'scripts'))})
from notebook_echo import TerminalEcho
out = io.StringIO()
e = TerminalEcho("03_copycat", "tty", stream=out)
upd = lambda did, t, k="update_display_data": e.message({"msg_type": k, "content": {"data": {"text/plain": t}, "transient": {"display_id": did}}})
upd("a", "copycat NPD-SL 0/30", "display_data")
upd("a", "copycat NPD-SL 10/30 ETA 20s epoch=1/2")
e.message({"msg_type": "stream", "content": {"name": "stdout", "text": "copycat NPD-SL: resumed\\nnot a step\\n"}})
e.message({"msg_type": "display_data", "content": {"data": {"text/plain": "a table"}, "transient": {}}})
upd("a", "copycat NPD-SL 30/30 took 30s epoch=2/2")
upd("b", "copycat PD-SL 1/30", "display_data")
e.close()
sys.stdout.write(out.getvalue())`;
    const r = spawnSync(path.join(VENV, 'bin', 'python'), ['-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const C = '\r\x1b[K';
    assert.equal(r.stdout, `${C}[03_copycat] copycat NPD-SL 0/30${C}[03_copycat] copycat NPD-SL 10/30 ETA 20s epoch=1/2` +
      `${C}[03_copycat] copycat NPD-SL: resumed\n[03_copycat] copycat NPD-SL 10/30 ETA 20s epoch=1/2` +
      `${C}[03_copycat] copycat NPD-SL 30/30 took 30s epoch=2/2\n${C}[03_copycat] copycat PD-SL 1/30\n`);
  });

  it('--status-file names the failing notebook and the cell; later notebooks stay "not run"', () => {
    const bad = path.join(tmp, '02_bad.ipynb');
    const later = path.join(tmp, '03_later.ipynb');
    fs.writeFileSync(bad, notebook([`const b = 2;`, `throw new Error('no stolen labels');`]));
    fs.writeFileSync(later, notebook([`const c = 3;`]));
    const statusFile = path.join(tmp, 'status.json');
    const r = runNotebooks([bad, later, '--status-file', statusFile]);
    assert.equal(r.status, 1);
    const status = JSON.parse(fs.readFileSync(statusFile, 'utf8'));
    assert.equal(status.failed, '02_bad');
    assert.equal(status.exitCode, 1);
    assert.deepEqual(status.notebooks.map((n: { name: string; state: string }) => `${n.name}:${n.state}`), ['02_bad:failed', '03_later:not run']);
    assert.equal(status.notebooks[0].cell, 1);
  });

  it('a failing cell or a type error exits non-zero and prints notebook, cell index, source and the error text', () => {
    const bad = path.join(tmp, 'bad.ipynb');
    fs.writeFileSync(bad, notebook([`const fine = 1;`, `throw new Error('boom: the oracle is unreachable');`, `console.log('never runs');`]));
    const typed = path.join(tmp, 'type.ipynb');
    fs.writeFileSync(typed, notebook([`const n: number = 'not a number';`]));
    const r = runNotebooks([bad, typed, '--keep-going']);
    assert.equal(r.status, 1);
    const [badReport, typeReport] = r.stderr.split(/(?=\[run-notebooks\] FAILED)/).filter((s) => s.includes('FAILED'));
    assert.match(badReport, /FAILED .*bad\.ipynb: cell 1 \(code, CellExecutionError\)/);
    assert.match(badReport, /----- cell source -----\nthrow new Error\('boom: the oracle is unreachable'\);/);
    assert.match(badReport, /Error: boom: the oracle is unreachable/);
    const cells = JSON.parse(fs.readFileSync(path.join(tmp, 'out/bad.ipynb'), 'utf8')).cells as Cell[];
    assert.deepEqual(cells[2].outputs, [], 'cells after the failure do not run');
    assert.match(typeReport, /FAILED .*type\.ipynb: cell 0/);
    assert.match(typeReport, /Type 'string' is not assignable to type 'number'/);
  });
});
