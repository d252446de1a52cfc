/**
 * Headless experiments on a run directory, the same functions the notebooks call. The experiments and
 * their options are the entries of scripts/experiments/registry.ts; `npm run experiment -- --help` lists
 * them:
 *
 *   npm run experiment -- pipeline --profile quick        oracle, stolen labels, copycats, results table
 *   npm run experiment:budget -- --profile quick          05: copy quality vs number of queries
 *   npm run experiment -- members --run-dir D --seeds 1-3 [--stop-before 2h30m]
 *
 * Every experiment takes --profile P and --run-dir DIR (default data/runs/<profile>); members and distil
 * take --stop-before T (a date-time with its zone, e.g. 2026-12-06T01:55Z, or a time from now, e.g.
 * 2h30m: ends on the last checkpoint when the next epoch would not finish by then, exit status 75).
 * Each prints one JSON line per result and is resumable (re-run the same command after a kill).
 */
import { parseArgs } from 'util';
import { formatBackendReport, initBackend } from '../src/platform/backend';
import { epochDeadline, parseDeadline, type EpochDeadline } from '../src/train/deadline';
import { openRun } from '../src/run';
import { trainOracle } from '../src/steps/oracleStep';
import { EXPERIMENTS, Values } from './experiments/registry';

/** Set by --stop-before; main's caller tells a stop at the deadline from a failure. */
let deadline: EpochDeadline | undefined;

const COMMON = { profile: { type: 'string' }, 'run-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

function usage(): string {
  return `usage: npm run experiment -- NAME [--profile P] [--run-dir D] [options]\n${EXPERIMENTS.map((e) => `  ${e.usage}`).join('\n')}`;
}

async function main(): Promise<void> {
  const what = process.argv[2];
  const entry = EXPERIMENTS.find((e) => e.name === what);
  if (!entry) {
    if (what === '--help' || what === '-h') return void console.log(usage());
    throw new Error(`${usage()}\n(got '${what ?? ''}': expected one of ${EXPERIMENTS.map((e) => e.name).join('|')})`);
  }
  // Each experiment accepts only its own options: a misspelt or foreign one fails before any training.
  const { values } = parseArgs({
    args: process.argv.slice(3),
    options: { ...COMMON, ...entry.options, ...(entry.stoppable ? { 'stop-before': { type: 'string' } } : {}) },
  });
  if (values.help) return void console.log(entry.usage);
  entry.check?.(values as Values);
  deadline = values['stop-before'] === undefined ? undefined : epochDeadline(parseDeadline(String(values['stop-before'])));
  const hooks = deadline ? { signal: deadline.signal, onEpoch: deadline.onEpoch } : undefined;
  console.log(formatBackendReport(await initBackend()));
  const run = openRun({ profile: values.profile as string | undefined, dir: values['run-dir'] as string | undefined });
  const t0 = Date.now();
  const oracle = await trainOracle(run); // every experiment attacks the run's oracle (reused when already trained)
  await entry.run({ run, oracle, values: values as Values, hooks, t0 });
  console.log(`[experiment] ${what} done in ${((Date.now() - t0) / 60000).toFixed(1)} min; run directory ${run.dir}`);
}

main().catch((e) => {
  const why = deadline?.reason();
  if (why && e instanceof Error && e.name === 'AbortError') {
    // EX_TEMPFAIL: nothing failed, the work is unfinished; a chained `&& ensemble ...` must not run.
    console.error(`[experiment] stopped by --stop-before: ${why}; ${e.message.replace(/^train: aborted during [^;]*; /, '')}; re-run the same command to go on.`);
    process.exit(75);
  }
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
