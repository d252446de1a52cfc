/**
 * Headless experiments on a run directory, the same functions the notebooks call:
 *
 *   npm run experiment -- pipeline --profile quick        oracle, stolen labels, copycats, results table
 *   npm run experiment -- oracle --profile full           the oracle only; prints its metrics JSON
 *   npm run experiment:budget -- --profile quick          05: copy quality vs number of queries
 *   npm run experiment:defences -- --profile quick        06: defences vs honest-user accuracy
 *   npm run experiment -- ensemble --run-dir D --models M1,M2 [--flip] [--shift PX] [--name N] [--recompute]
 *                                                          saved copycats of D's oracle scored as one ensemble; each
 *                                                          copy's probabilities per view are cached in D and reused
 *                                                          while its weights are unchanged (--recompute: predict anew)
 *   npm run experiment -- members --run-dir D --seeds 1-3 [--sets NPD-SL] [--group G] [--flip] [--shift PX] [--stop-before T]
 *                                                          copycats differing only in their seed, then their ensemble
 *   npm run experiment -- distil --run-dir D --teachers M1[,M2] --weight 0.5 --name N [--sets NPD-SL] [--epochs E] [--seed S] [--teacher-on all|altered] [--stop-before T]
 *                                                          a copycat trained on D's stolen set with teacher targets
 *
 * Options: --run-dir DIR (default data/runs/<profile>), --budgets 1000,5000, --epochs N,
 * --sets NPD-SL,NPD+PD-SL (pipeline: train only these copycats; the table lists what is trained),
 * --stop-before T (members, distil: a date-time with its zone, e.g. 2026-12-06T01:55Z, or a time from now,
 * e.g. 2h30m; ends on the last checkpoint when the next epoch would not finish by then, exit status 75).
 * Each prints one JSON line per result and is resumable (re-run the same command after a kill).
 */
import { parseArgs } from 'util';
import { formatBackendReport, initBackend } from '../src/platform/backend';
import { defenceExperiment } from '../src/experiments/defences';
import { distilCopycat } from '../src/experiments/distillation';
import { parseSeeds, trainSeedMembers } from '../src/experiments/seedMembers';
import { queryBudgetCurve } from '../src/experiments/queryBudget';
import { epochDeadline, parseDeadline, type EpochDeadline } from '../src/train/deadline';
import { COPYCAT_SETS, type CopycatSetName } from '../src/config';
import { openRun } from '../src/run';
import { trainCopycat } from '../src/steps/copycatStep';
import { scoreCopycatEnsemble, viewsSuffix } from '../src/experiments/ensembleStep';
import { trainOracle } from '../src/steps/oracleStep';
import { writeRunResults } from '../src/steps/resultsStep';
import { stealLabels } from '../src/steps/stealStep';
import { resultsMarkdown } from '../src/report';

/** Set by --stop-before; main's caller tells a stop at the deadline from a failure. */
let deadline: EpochDeadline | undefined;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      profile: { type: 'string' },
      'run-dir': { type: 'string' },
      budgets: { type: 'string' },
      epochs: { type: 'string' },
      sets: { type: 'string' },
      models: { type: 'string' },
      flip: { type: 'boolean' },
      shift: { type: 'string' },
      name: { type: 'string' },
      teachers: { type: 'string' },
      weight: { type: 'string' },
      seeds: { type: 'string' },
      seed: { type: 'string' },
      'teacher-on': { type: 'string' },
      group: { type: 'string' },
      recompute: { type: 'boolean' },
      'stop-before': { type: 'string' },
    },
  });
  const what = positionals[0];
  const list = (s: unknown) => String(s).split(',').map((x) => x.trim()).filter(Boolean);
  if (!['oracle', 'pipeline', 'budget', 'defences', 'ensemble', 'distil', 'members'].includes(what)) {
    throw new Error(`usage: npm run experiment -- oracle|pipeline|budget|defences|ensemble|distil|members [--profile P] [--run-dir D] (got '${what ?? ''}')`);
  }
  const weight = values.weight === undefined || String(values.weight).trim() === '' ? NaN : Number(values.weight);
  if (what === 'distil') {
    if (!values.teachers || !values.name || values.weight === undefined) throw new Error('distil: --teachers (comma-separated saved copycat model directories), --weight (0..1) and --name are required');
    if (!(weight >= 0 && weight <= 1)) throw new Error(`distil: --weight must be a number in [0, 1], got '${values.weight}'`);
    if (values.sets && !COPYCAT_SETS.includes(values.sets as CopycatSetName)) throw new Error(`distil: --sets takes one of ${COPYCAT_SETS.join(', ')}, got '${values.sets}'`);
    if (values['teacher-on'] !== undefined && !['all', 'altered'].includes(String(values['teacher-on']))) throw new Error(`distil: --teacher-on takes all or altered, got '${values['teacher-on']}'`);
    if (values.seed !== undefined && !/^[1-9]\d*$/.test(String(values.seed))) throw new Error(`distil: --seed must be a whole number >= 1, got '${values.seed}'`);
  }
  if (what === 'ensemble' && !values.models) throw new Error('ensemble: --models is required (comma-separated saved copycat model directories)');
  if (what === 'members') {
    if (!values.seeds) throw new Error('members: --seeds is required, e.g. --seeds 1,2,3 or --seeds 1-4');
    if (values.sets && !COPYCAT_SETS.includes(values.sets as CopycatSetName)) throw new Error(`members: --sets takes one of ${COPYCAT_SETS.join(', ')}, got '${values.sets}'`);
  }
  if (values['stop-before'] !== undefined && what !== 'members' && what !== 'distil') throw new Error(`--stop-before applies to members and distil only, not ${what}`);
  deadline = values['stop-before'] === undefined ? undefined : epochDeadline(parseDeadline(String(values['stop-before'])));
  const hooks = deadline ? { signal: deadline.signal, onEpoch: deadline.onEpoch } : undefined;
  const seeds = what === 'members' ? parseSeeds(String(values.seeds)) : [];
  const shift = values.shift === undefined ? 0 : Number(values.shift);
  if (!(Number.isInteger(shift) && shift >= 0 && shift < 16)) throw new Error(`${what}: --shift must be a whole number of pixels from 0 to 15, got '${values.shift}'`);
  console.log(formatBackendReport(await initBackend()));
  const run = openRun({ profile: values.profile as string | undefined, dir: values['run-dir'] as string | undefined });
  const t0 = Date.now();
  const epochs = values.epochs ? Number(values.epochs) : undefined;
  if (epochs !== undefined && !(Number.isInteger(epochs) && epochs > 0)) throw new Error(`--epochs must be a positive integer, got '${values.epochs}'`);
  const oracle = await trainOracle(run); // every experiment attacks the run's oracle (reused when already trained)
  if (what === 'oracle') {
    const { testPredictions: _omitted, history, ...summary } = oracle;
    console.log(JSON.stringify({ experiment: 'oracle', profile: run.config.profile, runDir: run.dir, ...summary, epochs: history.length, lastEpoch: history[history.length - 1] }));
  } else if (what === 'pipeline') {
    await stealLabels(run);
    const sets = values.sets ? (String(values.sets).split(',').map((x) => x.trim()) as CopycatSetName[]) : run.config.copycat.sets;
    const unknown = sets.filter((x) => !COPYCAT_SETS.includes(x));
    if (unknown.length) throw new Error(`--sets: unknown copycat set(s) ${unknown.join(', ')}; expected a comma-separated subset of ${COPYCAT_SETS.join(',')}`);
    for (const set of sets) await trainCopycat(run, set);
    const table = writeRunResults(run, { wallSeconds: (Date.now() - t0) / 1000 });
    console.log(resultsMarkdown(table));
  } else if (what === 'budget') {
    const budgets = values.budgets ? String(values.budgets).split(',').map((b) => Number(b.trim())) : undefined;
    if (budgets?.some((b) => !Number.isInteger(b) || b < 1)) throw new Error(`--budgets must be comma-separated positive integers, got '${values.budgets}'`);
    for (const p of await queryBudgetCurve(run, { budgets, epochs })) console.log(JSON.stringify(p));
  } else if (what === 'distil') {
    const { metrics, history, ...r } = await distilCopycat(run, list(values.teachers), {
      name: String(values.name), weight, set: values.sets as CopycatSetName | undefined, epochs,
      seed: values.seed === undefined ? undefined : Number(values.seed),
      teacherOn: values['teacher-on'] as 'all' | 'altered' | undefined, hooks,
    });
    console.log(JSON.stringify({ experiment: 'distil', ...r, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage, epochs: history.length }));
  } else if (what === 'members') {
    await stealLabels(run); // the members learn from the run's stolen answers; asked once, then read from the cache
    const r = await trainSeedMembers(run, seeds, { set: values.sets as CopycatSetName | undefined, group: values.group as string | undefined, flip: !!values.flip, shift, hooks });
    for (const m of r.members) {
      console.log(JSON.stringify({ experiment: 'member', group: r.group, seed: m.seed, modelDir: m.modelDir, accuracy: m.metrics.accuracy, macroAverage: m.metrics.macroAverage, agreement: m.agreement, performanceOverTarget: m.performanceOverTarget, wallSeconds: m.wallSeconds, trainingSeconds: m.trainingSeconds }));
    }
    if (r.ensemble) {
      const { metrics, ...e } = r.ensemble;
      console.log(JSON.stringify({ experiment: 'ensemble', ...e, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage }));
    }
  } else if (what === 'ensemble') {
    const members = list(values.models);
    const name = (values.name as string | undefined) ?? `${members.length}-members${viewsSuffix({ flip: !!values.flip, shift })}`;
    const { metrics, ...r } = await scoreCopycatEnsemble(run, members, { name, flip: !!values.flip, shift, cache: !values.recompute });
    console.log(JSON.stringify({ experiment: 'ensemble', ...r, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage }));
  } else {
    for (const r of await defenceExperiment(run, { epochs })) console.log(JSON.stringify(r));
  }
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
