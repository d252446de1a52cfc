/**
 * `npm run reproduce -- [--profile smoke|quick|full] [--run-dir DIR] [--oracle local|http] [--from NN] [--no-check]`
 *
 * Executes the notebooks 00..04 headless, in order, on one run directory (each reads what the previous
 * wrote), fails if any cell fails, and leaves results.md/.csv/.json plus the executed notebooks in the run
 * directory. The notebooks are the single source of the pipeline: this script adds no logic of its own.
 *
 * The run directory defaults to the one the lab's notebooks open (<data>/runs/<profile>), so
 * `npm run lab -- --run DIR` continues a reproduced run; step results are keyed by their inputs, so running
 * again reuses what is finished. Before any training it checks that every data source is there
 * (src/data/sources.ts), and any failure ends with the command that resumes.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { parseBackendChoice } from '../src/platform/backend';
import { DEFAULT_PROFILE, PROFILES, resolveConfig } from '../src/config';
import { checkDataSources, formatSourceChecks } from '../src/data/sources';
import { projectRoot } from '../src/paths';
import { resultsMarkdown, ResultsTable, writeResults } from '../src/report';
// run.ts itself, not the run/ index: this script needs only the folder conventions, not the step code.
import { chooseProfile, defaultRunDir } from '../src/run/run';

const NOTEBOOKS = ['00_environment', '01_oracle', '02_npd_labeling', '03_copycat', '04_results'];
const STATUS_FILE = 'reproduce-status.json';

interface Plan {
  profile: string;
  runDir: string;
  oracle: string;
  from: string;
}

const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The command that picks up where a run stopped: same profile, same folder, from the given notebook. */
function resumeCommand(p: Plan, from: string): string {
  const args = ['--profile', p.profile, '--run-dir', p.runDir, '--from', from, ...(p.oracle !== 'local' ? ['--oracle', p.oracle] : [])];
  return `npm run reproduce -- ${args.map(quote).join(' ')}`;
}

/** `--from 3`, `--from 03` or `--from 03_copycat` -> '03'. */
function parseFrom(v: string): string {
  const nn = /^\d{1,2}$/.test(v) ? v.padStart(2, '0') : undefined;
  const match = NOTEBOOKS.find((n) => n === v || n.slice(0, 2) === nn);
  if (!match) throw new Error(`--from must name one of the notebooks ${NOTEBOOKS.join(', ')} (e.g. --from 03), got '${v}'`);
  return match.slice(0, 2);
}

/** The first notebook the status file does not list as done (run-notebooks.py --status-file). */
function failedFrom(runDir: string, fallback: string): string {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(runDir, STATUS_FILE), 'utf8')) as { notebooks?: { name: string; state: string }[] };
    const open = s.notebooks?.find((n) => n.state !== 'ok');
    return open ? open.name.slice(0, 2) : fallback;
  } catch {
    return fallback;
  }
}

function fail(plan: Plan, from: string, why: string, code: number): never {
  console.error(`[reproduce] ${why}`);
  console.error(`[reproduce] to resume (finished steps are reused):\n  ${resumeCommand(plan, from)}`);
  process.exit(code);
}

/**
 * `npm install` then `npm run reproduce` is the whole set-up: the native TensorFlow backend is built here
 * when it is missing (setup-tensorflow is a 4 s check when it works, ~40 s once when it must build).
 * Skipped when the user chose another backend (COPYCAT_BACKEND=wasm|cpu).
 */
function ensureNativeBackend(p: Plan, from: string, root: string): void {
  const env = process.env.COPYCAT_BACKEND?.trim();
  // The same parsing as initBackend: a typo fails here, named, before anything runs.
  const choice = env ? parseBackendChoice(env) : 'auto';
  if (choice !== 'auto' && choice !== 'tensorflow') {
    console.log(`[reproduce] COPYCAT_BACKEND=${choice}: not checking the native TensorFlow backend`);
    return;
  }
  console.log('[reproduce] native TensorFlow backend: checking (built once from the tensorflow-cpu wheel when missing, ~40 s)');
  const r = spawnSync('npx', ['ts-node', '--transpile-only', path.join(root, 'scripts', 'setup-tensorflow.ts')], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    fail(p, from, 'the native TensorFlow backend could not be built (above; environment.md says why it can fail); ' +
      'fix that and rerun, or run on the slower WebAssembly backend with COPYCAT_BACKEND=wasm', 4);
  }
}

/** Known once the arguments are parsed: from then on every failure can say how to resume. */
let plan: Plan | undefined;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string' },
      'run-dir': { type: 'string' },
      oracle: { type: 'string', default: 'local' },
      from: { type: 'string', default: '00' },
      'no-check': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('npm run reproduce -- [--profile smoke|quick|full] [--run-dir DIR] [--oracle local|http] [--from 02] [--no-check]\n' +
      `  run folder: --run-dir, else $COPYCAT_RUN_DIR, else <data>/runs/<profile> (the lab's default)\n` +
      `  profile: --profile, else $COPYCAT_PROFILE, else the run folder's config.json, else ${DEFAULT_PROFILE}`);
    return;
  }
  const givenDir = (values['run-dir'] as string | undefined) ?? (process.env.COPYCAT_RUN_DIR || undefined);
  // The same rule as openRun, so the notebooks and this script agree.
  const profile = chooseProfile(values.profile as string | undefined, givenDir);
  if (!(profile in PROFILES)) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}, got '${profile}'`);
  if (!['local', 'http'].includes(values.oracle as string)) throw new Error(`--oracle must be local or http, got '${values.oracle}'`);
  const from = parseFrom(values.from as string);
  const root = projectRoot();
  const p: Plan = { profile, runDir: path.resolve(givenDir ?? defaultRunDir(profile)), oracle: values.oracle as string, from };
  plan = p;
  const { runDir } = p;
  const notebooks = NOTEBOOKS.filter((n) => n.slice(0, 2) >= from).map((n) => path.join(root, 'notebooks', `${n}.ipynb`));
  console.log(`[reproduce] profile ${profile}, run directory ${runDir}${from !== '00' ? `, from ${from}` : ''}`);

  if (!values['no-check']) {
    ensureNativeBackend(p, from, root);
    const t = Date.now();
    // Relative NPD paths resolve from the kernels' folder, notebooks/.
    const checks = await checkDataSources(resolveConfig(profile), { cwd: path.join(root, 'notebooks') });
    console.log(`[reproduce] data sources (${((Date.now() - t) / 1000).toFixed(1)} s):\n${formatSourceChecks(checks)}`);
    if (checks.some((c) => !c.ok)) {
      fail(p, from, 'a data source is missing (above: what to place where); nothing was trained', 3);
    }
  }

  // Ctrl+C reaches the notebook runner too (same process group); ignoring it here lets this script outlive
  // the runner and print the resume command instead of dying silently.
  process.on('SIGINT', () => undefined);
  // A status file left by an earlier run must not name the notebook to resume from if this one dies early.
  fs.rmSync(path.join(runDir, STATUS_FILE), { force: true });
  const t0 = Date.now();
  const r = spawnSync('bash', [
    path.join(root, 'scripts', 'jupyter-env.sh'), 'python', path.join(root, 'scripts', 'run-notebooks.py'),
    ...notebooks, '--profile', profile, '--run-dir', runDir, '--build', 'always',
    '--env', `COPYCAT_ORACLE_KIND=${p.oracle}`, '--status-file', path.join(runDir, STATUS_FILE),
  ], { stdio: 'inherit', cwd: root });
  const wallSeconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    const what = r.status === 130 || r.signal === 'SIGINT' ? 'interrupted' : 'FAILED';
    fail(p, failedFrom(runDir, from), `${what} after ${(wallSeconds / 60).toFixed(1)} min (exit ${r.status ?? r.signal}); ` +
      `executed notebooks so far are in ${path.join(runDir, 'notebooks')}`, r.status || 1);
  }
  const resultsFile = path.join(runDir, 'results.json');
  if (!fs.existsSync(resultsFile)) fail(p, '04', `the notebooks ran but ${resultsFile} is missing`, 1);
  const table = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as ResultsTable;
  // The whole pipeline's wall time is only known here, so the table is rewritten with it.
  if (from === '00') {
    table.wallSeconds = wallSeconds;
    table.stages = stageSeconds(runDir);
  }
  writeResults(runDir, table);
  console.log(resultsMarkdown(table));
  console.log(`[reproduce] done in ${(wallSeconds / 60).toFixed(1)} min: ${runDir}/results.md`);
  console.log(`[reproduce] open it in JupyterLab (executed notebooks in ${path.join(runDir, 'notebooks')}): npm run lab -- --run ${quote(runDir)}`);
}

/** Seconds per notebook of this reproduction, from the runner's status file (the stages of results.json). */
function stageSeconds(runDir: string): { name: string; seconds: number }[] {
  const s = JSON.parse(fs.readFileSync(path.join(runDir, STATUS_FILE), 'utf8')) as { notebooks?: { name: string; state: string; seconds?: number }[] };
  return (s.notebooks ?? []).filter((n) => n.state === 'ok' && typeof n.seconds === 'number').map((n) => ({ name: n.name, seconds: n.seconds as number }));
}

main().catch((e: Error) => {
  if (plan) fail(plan, failedFrom(plan.runDir, plan.from), e.message, 2);
  console.error(e.message);
  process.exit(2);
});
