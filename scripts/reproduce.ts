/**
 * `npm run reproduce -- --profile smoke|quick|full [--run-dir DIR] [--oracle local|http]`
 *
 * Executes the notebooks 00..04 headless, in order, on one run directory (each reads what the previous
 * wrote), fails if any cell fails, and leaves results.md/.csv/.json plus the executed notebooks in the run
 * directory. The notebooks are the single source of the pipeline: this script adds no logic of its own.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { PROFILES } from '../src/config';
import { dataDir, projectRoot } from '../src/paths';
import { resultsMarkdown, ResultsTable, writeResults } from '../src/report';

const NOTEBOOKS = ['00_environment', '01_oracle', '02_npd_labeling', '03_copycat', '04_results'];

function main(): void {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'quick' },
      'run-dir': { type: 'string' },
      oracle: { type: 'string', default: 'local' },
      from: { type: 'string', default: '00' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('npm run reproduce -- [--profile smoke|quick|full] [--run-dir DIR] [--oracle local|http] [--from 02]');
    return;
  }
  const profile = values.profile as string;
  if (!(profile in PROFILES)) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}, got '${profile}'`);
  if (!['local', 'http'].includes(values.oracle as string)) throw new Error(`--oracle must be local or http, got '${values.oracle}'`);
  const root = projectRoot();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const runDir = path.resolve((values['run-dir'] as string | undefined) ?? path.join(dataDir(), 'runs', `${stamp}-${profile}`));
  const notebooks = NOTEBOOKS.filter((n) => n >= (values.from as string)).map((n) => path.join(root, 'notebooks', `${n}.ipynb`));
  console.log(`[reproduce] profile ${profile}, run directory ${runDir}`);
  const t0 = Date.now();
  const r = spawnSync('bash', [
    path.join(root, 'scripts', 'jupyter-env.sh'), 'python', path.join(root, 'scripts', 'run-notebooks.py'),
    ...notebooks, '--profile', profile, '--run-dir', runDir, '--build', 'always',
    '--env', `COPYCAT_ORACLE_KIND=${values.oracle}`,
  ], { stdio: 'inherit', cwd: root });
  const wallSeconds = (Date.now() - t0) / 1000;
  if (r.status !== 0) {
    console.error(`[reproduce] FAILED after ${(wallSeconds / 60).toFixed(1)} min (exit ${r.status ?? r.signal}); executed notebooks so far are in ${path.join(runDir, 'notebooks')}`);
    process.exit(r.status || 1);
  }
  const resultsFile = path.join(runDir, 'results.json');
  if (!fs.existsSync(resultsFile)) throw new Error(`[reproduce] the notebooks ran but ${resultsFile} is missing`);
  const table = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as ResultsTable;
  // The whole pipeline's wall time is only known here, so the table is rewritten with it.
  if (values.from === '00') table.wallSeconds = wallSeconds;
  writeResults(runDir, table);
  console.log(resultsMarkdown(table));
  console.log(`[reproduce] done in ${(wallSeconds / 60).toFixed(1)} min: ${runDir}/results.md`);
}

try {
  main();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
