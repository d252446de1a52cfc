import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { freePort } from './browser/labServer';
import { requireVenvTool, VENV } from './jupyterFixture';
import { tempDir } from './tempDirs';

/**
 * Tracked notebooks are sources: outputs belong to executed copies in run folders. Checks the committed
 * files, the pre-save hook that keeps them so when saved from the lab (scripts/jupyter_strip_outputs.py),
 * the config scripts/jupyter-env.sh writes for it, and one real save through a Jupyter server.
 * The hook parts need the project venv (`npm run lab:setup`); skipped with a reason without it unless
 * COPYCAT_REQUIRE_JUPYTER=1.
 */

const ROOT = path.resolve(__dirname, '..');
const HOOK = path.join(ROOT, 'scripts/jupyter_strip_outputs.py');

interface Cell { cell_type: string; id?: string; metadata?: Record<string, unknown>; outputs?: unknown[]; execution_count?: number | null; source: string | string[] }
interface Notebook { cells: Cell[]; metadata?: Record<string, unknown>; nbformat: number; nbformat_minor: number }

/** A notebook that looks run: outputs, counts, timing metadata, and a tag that must survive. */
function executedNotebook(): Notebook {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    cells: [
      { cell_type: 'markdown', id: 'm0', metadata: {}, source: '# title' },
      {
        cell_type: 'code', id: 'c1', execution_count: 7, source: '1 + 1',
        metadata: { tags: ['parameters'], scrolled: true, execution: { 'iopub.status.idle': '2025-01-01T00:00:00Z' }, jupyter: { outputs_hidden: true, source_hidden: true } },
        outputs: [{ output_type: 'execute_result', execution_count: 7, data: { 'text/plain': '2' }, metadata: {} }],
      },
    ],
  };
}

function assertStripped(nb: Notebook, where: string): void {
  const code = nb.cells.find((c) => c.id === 'c1');
  assert.ok(code, `${where}: code cell kept`);
  assert.deepEqual(code.outputs, [], `${where}: outputs removed`);
  assert.equal(code.execution_count, null, `${where}: execution count removed`);
  assert.deepEqual(code.metadata, { tags: ['parameters'], jupyter: { source_hidden: true } }, `${where}: tags and author metadata kept`);
  // nbformat writes multi-line strings as lists of lines.
  const src = nb.cells[0].source;
  assert.equal(Array.isArray(src) ? src.join('') : src, '# title');
}

function assertKept(nb: Notebook, where: string): void {
  assert.deepEqual(nb, executedNotebook(), `${where}: an executed copy must keep its outputs`);
}

describe('tracked notebooks', () => {
  it('carry no outputs and no execution counts (git ls-files notebooks/*.ipynb)', function () {
    const ls = spawnSync('git', ['ls-files', '-z', '--', 'notebooks/*.ipynb'], { cwd: ROOT, encoding: 'utf8' });
    if (ls.status !== 0) {
      // A source tarball without .git has nothing "tracked" to check.
      console.log(`      SKIPPED: git ls-files failed (${ls.stderr.trim() || `exit ${ls.status}`})`);
      this.skip();
    }
    const files = ls.stdout.split('\0').filter((f) => f.length > 0 && fs.existsSync(path.join(ROOT, f)));
    assert.ok(files.length > 0, 'expected tracked notebooks under notebooks/');
    const dirty: string[] = [];
    for (const f of files) {
      const nb = JSON.parse(fs.readFileSync(path.join(ROOT, f), 'utf8')) as Notebook;
      nb.cells.forEach((c, i) => {
        if (c.cell_type !== 'code') return;
        if ((c.outputs ?? []).length > 0) dirty.push(`${f} cell ${i} (${c.id ?? 'no id'}): ${c.outputs?.length} outputs`);
        if (c.execution_count != null) dirty.push(`${f} cell ${i} (${c.id ?? 'no id'}): execution_count ${c.execution_count}`);
      });
    }
    const dirtyFiles = [...new Set(dirty.map((d) => d.split(' ')[0]))];
    assert.deepEqual(dirty, [], `strip them: python3 scripts/jupyter_strip_outputs.py ${dirtyFiles.join(' ')}`);
  });
});

describe('notebook pre-save hook (scripts/jupyter_strip_outputs.py)', function () {
  this.timeout(60_000);
  const python = path.join(VENV, 'bin', 'python');
  let tmp = '';
  let server: ChildProcess | undefined;
  let serverLog = '';

  before(function () {
    requireVenvTool(this, 'jupyter-server', 'notebook pre-save hook tests');
    tmp = tempDir('cc-strip-');
  });

  after(() => {
    if (server?.pid && server.exitCode === null) {
      try {
        process.kill(-server.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  });

  it('strips notebooks saved under notebooks/ (any server root, through symlinks) and keeps run-folder copies', () => {
    const repo = path.join(tmp, 'unit/repo');
    fs.mkdirSync(path.join(repo, 'notebooks'), { recursive: true });
    fs.mkdirSync(path.join(repo, 'data/runs/r1/notebooks'), { recursive: true });
    fs.symlinkSync(path.join(repo, 'notebooks'), path.join(tmp, 'unit/link'));
    // [server root, API path, expected]: the lab serves notebooks/ itself (scripts/lab.sh); other roots too.
    const cases: [string, string, 'stripped' | 'kept'][] = [
      [path.join(repo, 'notebooks'), '03_copycat.ipynb', 'stripped'],
      [repo, '/notebooks/03_copycat.ipynb', 'stripped'],
      [path.join(tmp, 'unit'), 'link/03_copycat.ipynb', 'stripped'],
      [repo, 'data/runs/r1/notebooks/03_copycat.ipynb', 'kept'],
      [repo, 'notebooks-old/03_copycat.ipynb', 'kept'],
      [repo, '03_copycat.ipynb', 'kept'],
    ];
    const script = `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("strip", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
args = json.loads(sys.stdin.read())
hook = m.make_pre_save_hook(args["notebooks_dir"])
class CM:
    log = None
    def __init__(self, root): self.root_dir = root
out = []
for root, api_path in args["cases"]:
    model = {"type": "notebook", "content": json.loads(json.dumps(args["nb"]))}
    hook(model=model, path=api_path, contents_manager=CM(root))
    out.append(model["content"])
# Other file types pass untouched, as does a manager without a root_dir (not file-backed).
text = {"type": "file", "format": "text", "content": "x"}
hook(model=text, path="a.txt", contents_manager=CM(args["notebooks_dir"]))
orphan = {"type": "notebook", "content": json.loads(json.dumps(args["nb"]))}
hook(model=orphan, path="a.ipynb", contents_manager=object())
print(json.dumps({"results": out, "text": text, "orphan": orphan["content"]}))
`;
    const r = spawnSync(python, ['-B', '-c', script, HOOK], {
      input: JSON.stringify({ notebooks_dir: path.join(repo, 'notebooks'), cases: cases.map(([root, p]) => [root, p]), nb: executedNotebook() }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { results: Notebook[]; text: unknown; orphan: Notebook };
    cases.forEach(([root, p, want], i) => {
      const where = `root ${path.relative(tmp, root)}, path ${p}`;
      if (want === 'stripped') assertStripped(out.results[i], where);
      else assertKept(out.results[i], where);
    });
    assert.deepEqual(out.text, { type: 'file', format: 'text', content: 'x' });
    assertKept(out.orphan, 'manager without root_dir');
  });

  it('as a command, strips files in place keeping their JSON layout', () => {
    const dir = path.join(tmp, 'cli');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'n.ipynb');
    const nb = executedNotebook();
    nb.cells[0].source = 'caf\u00e9 \u00d7 3';
    fs.writeFileSync(file, `${JSON.stringify(nb, null, 1)}\n`);
    const r = spawnSync(python, ['-B', HOOK, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const text = fs.readFileSync(file, 'utf8');
    const stripped = JSON.parse(text) as Notebook;
    stripped.cells[0].source = '# title';
    assertStripped(stripped, 'command');
    const expected = JSON.parse(text) as Notebook;
    assert.equal(text, `${JSON.stringify(expected, null, 1)}\n`, 'indent 1, trailing newline, non-ASCII kept as written');
  });

  it('jupyter-env.sh writes a server config that installs the hook for this clone, and a real save goes through it', async () => {
    const jdir = path.join(tmp, 'jupyter');
    const env = spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'true'], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, COPYCAT_JUPYTER_DIR: jdir },
    });
    assert.equal(env.status, 0, env.stderr);
    const config = fs.readFileSync(path.join(jdir, 'config/jupyter_server_config.py'), 'utf8');
    assert.ok(config.includes(JSON.stringify(HOOK)), 'config loads scripts/jupyter_strip_outputs.py of this clone');
    assert.match(config, /^c\.ContentsManager\.pre_save_hook = _strip\.make_pre_save_hook\(NOTEBOOKS_DIR\)$/m);
    const dirLine = /^NOTEBOOKS_DIR = .*$/m;
    assert.equal(config.match(dirLine)?.[0], `NOTEBOOKS_DIR = ${JSON.stringify(path.join(ROOT, 'notebooks'))}`);

    // The same config, pointed at a scratch notebooks/ so the save below never touches the repository.
    const root = path.join(tmp, 'server');
    fs.mkdirSync(path.join(root, 'notebooks'), { recursive: true });
    fs.mkdirSync(path.join(root, 'runs/r1/notebooks'), { recursive: true });
    const configDir = path.join(tmp, 'server-config');
    fs.mkdirSync(configDir);
    fs.writeFileSync(path.join(configDir, 'jupyter_server_config.py'),
      config.replace(dirLine, `NOTEBOOKS_DIR = ${JSON.stringify(path.join(root, 'notebooks'))}`));

    const port = await freePort();
    const token = crypto.randomBytes(16).toString('hex');
    server = spawn(path.join(VENV, 'bin', 'jupyter-server'), ['--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0',
      `--ServerApp.root_dir=${root}`, `--IdentityProvider.token=${token}`, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])], {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, JUPYTER_CONFIG_DIR: configDir, JUPYTER_DATA_DIR: path.join(tmp, 'data'), JUPYTER_RUNTIME_DIR: path.join(tmp, 'runtime') },
    });
    server.stdout?.on('data', (d) => (serverLog += d));
    server.stderr?.on('data', (d) => (serverLog += d));
    const base = `http://127.0.0.1:${port}/api`;
    const auth = { Authorization: `token ${token}` };
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (server.exitCode !== null) assert.fail(`jupyter server exited (${server.exitCode}):\n${serverLog}`);
      try {
        if ((await fetch(`${base}/status`, { headers: auth })).ok) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) assert.fail(`jupyter server did not answer in 30 s:\n${serverLog}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    for (const p of ['notebooks/03_copycat.ipynb', 'runs/r1/notebooks/03_copycat.ipynb']) {
      const res = await fetch(`${base}/contents/${p}`, {
        method: 'PUT', headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'notebook', content: executedNotebook() }),
      });
      assert.ok(res.ok, `PUT ${p}: ${res.status} ${await res.text()}\n${serverLog}`);
    }
    assertStripped(JSON.parse(fs.readFileSync(path.join(root, 'notebooks/03_copycat.ipynb'), 'utf8')), 'saved through the server');
    const kept = JSON.parse(fs.readFileSync(path.join(root, 'runs/r1/notebooks/03_copycat.ipynb'), 'utf8')) as Notebook;
    assert.equal(kept.cells[1].outputs?.length, 1, 'run-folder copy keeps its output');
    assert.equal(kept.cells[1].execution_count, 7);
    assert.doesNotMatch(serverLog, /Pre-save hook .* failed|Overriding existing pre_save_hook/);
    assert.match(serverLog, /copycat: saved notebooks\/03_copycat\.ipynb without outputs/);
  });
});
