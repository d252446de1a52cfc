import type { ParseArgsConfig } from 'util';
import { defenceExperiment } from '../../src/experiments/defences';
import { detectionExperiment } from '../../src/experiments/detection';
import { ownershipVerification } from '../../src/experiments/ownershipVerification';
import { ARCHITECTURES, type ArchitectureName } from '../../src/models';
import { writeJson } from '../../src/run';
import { distilCopycat } from '../../src/experiments/distillation';
import { scoreCopycatEnsemble, viewsSuffix } from '../../src/experiments/ensembleStep';
import { queryBudgetCurve } from '../../src/experiments/queryBudget';
import { BUDGET_METHODS, budgetMethodsCurve, type BudgetMethod } from '../../src/experiments/budgetMethods';
import { SELECTION_STRATEGIES, type SelectionStrategy } from '../../src/querySelection';
import { parseSeeds, trainSeedMembers } from '../../src/experiments/seedMembers';
import { COPYCAT_SETS, type CopycatSetName } from '../../src/config';
import { resultsMarkdown } from '../../src/report';
import type { Run } from '../../src/run';
import { trainCopycat } from '../../src/steps/copycatStep';
import type { StepHooks } from '../../src/steps/inputs';
import type { OracleResult } from '../../src/steps/oracleStep';
import { writeRunResults } from '../../src/steps/resultsStep';
import { stealLabels } from '../../src/steps/stealStep';

/**
 * The experiments `npm run experiment -- NAME` knows: each entry is its usage line, its own options, their
 * checks and how it runs and prints (one JSON line per result). A new experiment is one entry here.
 */

type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface ExperimentContext {
  run: Run;
  /** The run's oracle: every experiment attacks it (trained first, reused when finished). */
  oracle: OracleResult;
  values: Values;
  /** Set with --stop-before: ends a long training on its last checkpoint. */
  hooks?: Pick<StepHooks, 'signal' | 'onEpoch'>;
  t0: number;
}

export interface Experiment {
  name: string;
  usage: string;
  options: Options;
  /** Whether --stop-before applies (long trainings that checkpoint per epoch). */
  stoppable?: boolean;
  /** Rejects bad options before anything is trained (errors name the option and what it expects). */
  check?(values: Values): void;
  run(ctx: ExperimentContext): Promise<void>;
}

const list = (s: unknown): string[] => String(s).split(',').map((x) => x.trim()).filter(Boolean);
const print = (v: unknown): void => console.log(JSON.stringify(v));

function oneSet(name: string, v: unknown): void {
  if (v !== undefined && !COPYCAT_SETS.includes(v as CopycatSetName)) throw new Error(`${name}: --sets takes one of ${COPYCAT_SETS.join(', ')}, got '${v}'`);
}

export function positiveEpochs(v: Values): number | undefined {
  if (v.epochs === undefined) return undefined;
  const epochs = Number(v.epochs);
  if (!(Number.isInteger(epochs) && epochs > 0)) throw new Error(`--epochs must be a positive integer, got '${v.epochs}'`);
  return epochs;
}

export function shiftOf(name: string, v: Values): number {
  const shift = v.shift === undefined ? 0 : Number(v.shift);
  if (!(Number.isInteger(shift) && shift >= 0 && shift < 16)) throw new Error(`${name}: --shift must be a whole number of pixels from 0 to 15, got '${v.shift}'`);
  return shift;
}

const weightOf = (v: Values): number => (v.weight === undefined || String(v.weight).trim() === '' ? NaN : Number(v.weight));

export const EXPERIMENTS: Experiment[] = [
  {
    name: 'oracle',
    usage: 'oracle --profile full                            the oracle only; prints its metrics JSON',
    options: {},
    async run({ run, oracle }) {
      const { testPredictions: _omitted, history, ...summary } = oracle;
      print({ experiment: 'oracle', profile: run.config.profile, runDir: run.dir, ...summary, epochs: history.length, lastEpoch: history[history.length - 1] });
    },
  },
  {
    name: 'pipeline',
    usage: 'pipeline --profile quick [--sets NPD-SL,PD-SL]   oracle, stolen labels, copycats, results table',
    options: { sets: { type: 'string' } },
    check(v) {
      const unknown = v.sets ? list(v.sets).filter((x) => !COPYCAT_SETS.includes(x as CopycatSetName)) : [];
      if (unknown.length) throw new Error(`--sets: unknown copycat set(s) ${unknown.join(', ')}; expected a comma-separated subset of ${COPYCAT_SETS.join(',')}`);
    },
    async run({ run, values, t0 }) {
      await stealLabels(run);
      const sets = values.sets ? (list(values.sets) as CopycatSetName[]) : run.config.copycat.sets;
      for (const set of sets) await trainCopycat(run, set);
      console.log(resultsMarkdown(writeRunResults(run, { wallSeconds: (Date.now() - t0) / 1000 })));
    },
  },
  {
    name: 'budget',
    usage: 'budget --profile full [--budgets 5000,10000] [--methods random,active,semi,both] [--strategy balanced]\n' +
      '      [--steps N] [--rounds 4] [--round-epochs 8] [--threshold 0.7] [--ratio 1] [--finished-only]\n' +
      '      05: copy quality vs paid queries, hard labels, the same training steps at every point; each point is a keyed variant',
    options: {
      budgets: { type: 'string' }, methods: { type: 'string' }, strategy: { type: 'string' }, steps: { type: 'string' },
      rounds: { type: 'string' }, 'round-epochs': { type: 'string' }, threshold: { type: 'string' }, ratio: { type: 'string' },
      'finished-only': { type: 'boolean' },
    },
    stoppable: true,
    check(v) {
      if (v.budgets && list(v.budgets).some((b) => !Number.isInteger(Number(b)) || Number(b) < 1)) throw new Error(`--budgets must be comma-separated positive integers, got '${v.budgets}'`);
      const bad = v.methods ? list(v.methods).filter((m) => !(BUDGET_METHODS as readonly string[]).includes(m)) : [];
      if (bad.length) throw new Error(`--methods: unknown method(s) ${bad.join(', ')}; expected a comma-separated subset of ${BUDGET_METHODS.join(',')}`);
      if (v.strategy !== undefined && !(SELECTION_STRATEGIES as readonly string[]).includes(String(v.strategy))) throw new Error(`--strategy takes one of ${SELECTION_STRATEGIES.join(', ')}, got '${v.strategy}'`);
      for (const k of ['steps', 'rounds', 'round-epochs'] as const) {
        if (v[k] !== undefined && !/^[1-9]\d*$/.test(String(v[k]))) throw new Error(`--${k} must be a whole number >= 1, got '${v[k]}'`);
      }
      if (v.threshold !== undefined && !(Number(v.threshold) >= 0 && Number(v.threshold) <= 1)) throw new Error(`--threshold must be a number in [0, 1], got '${v.threshold}'`);
      if (v.ratio !== undefined && !(Number(v.ratio) > 0)) throw new Error(`--ratio must be a number > 0, got '${v.ratio}'`);
    },
    async run({ run, values, hooks }) {
      const num = (k: string) => (values[k] === undefined ? undefined : Number(values[k]));
      const semi = { ...(values.threshold !== undefined ? { threshold: num('threshold') } : {}), ...(values.ratio !== undefined ? { ratio: num('ratio') } : {}) };
      const points = await budgetMethodsCurve(run, {
        budgets: values.budgets ? list(values.budgets).map(Number) : undefined,
        methods: values.methods ? (list(values.methods) as BudgetMethod[]) : undefined,
        strategy: values.strategy as SelectionStrategy | undefined, steps: num('steps'), rounds: num('rounds'), roundEpochs: num('round-epochs'),
        semi, finishedOnly: values['finished-only'] === true, hooks,
      });
      for (const p of points) print({ experiment: 'budget', ...p });
    },
  },
  {
    name: 'budget-modes',
    usage: 'budget-modes --profile quick [--budgets 1000,5000] [--epochs N]   hard labels vs probabilities at each budget',
    options: { budgets: { type: 'string' }, epochs: { type: 'string' } },
    check(v) {
      positiveEpochs(v);
      if (v.budgets && list(v.budgets).some((b) => !Number.isInteger(Number(b)) || Number(b) < 1)) throw new Error(`--budgets must be comma-separated positive integers, got '${v.budgets}'`);
    },
    async run({ run, values }) {
      const budgets = values.budgets ? list(values.budgets).map(Number) : undefined;
      for (const p of await queryBudgetCurve(run, { budgets, epochs: positiveEpochs(values) })) print(p);
    },
  },
  {
    name: 'defences',
    usage: 'defences --profile quick [--epochs N]                06: defences vs honest-user accuracy',
    options: { epochs: { type: 'string' } },
    check: (v) => void positiveEpochs(v),
    async run({ run, values }) {
      for (const r of await defenceExperiment(run, { epochs: positiveEpochs(values) })) print(r);
    },
  },
  {
    name: 'detect',
    usage: 'detect --profile full [--queries 10000] [--keys 20] [--cost-requests 40]\n' +
      '      07: queries until PRADA flags the NPD, PD and mixed attacks; false alarms on honest CIFAR-10 traffic; monitor cost',
    options: { queries: { type: 'string' }, keys: { type: 'string' }, 'cost-requests': { type: 'string' } },
    check(v) {
      for (const k of ['queries', 'keys', 'cost-requests'] as const) {
        if (v[k] !== undefined && !/^[1-9]\d*$/.test(String(v[k]))) throw new Error(`detect: --${k} must be a whole number >= 1, got '${v[k]}'`);
      }
    },
    async run({ run, values }) {
      const num = (k: string) => (values[k] === undefined ? undefined : Number(values[k]));
      const r = await detectionExperiment(run, { queries: num('queries'), honestKeys: num('keys'), costRequests: num('cost-requests') });
      writeJson(run.path('experiments', 'detection', 'results.json'), { ...r, createdAt: new Date().toISOString() });
      for (const row of r.rows) print({ experiment: 'detect', ...row });
      for (const c of r.cost) print({ experiment: 'detect-cost', ...c });
    },
  },
  {
    name: 'verify',
    usage: 'verify --profile full [--negatives resnet-9:2,vgg-small-bn:4] [--references resnet-9:21,vgg-small-bn:22] [--surrogates 31,32]\n' +
      '      [--negative-epochs 8] [--conferrable-epsilon 16] [--positives M1,M2] [--queries 100,1000]\n' +
      '      07: label-only fingerprints tell the run\'s copycats from independently trained CIFAR-10 models? scores and ROC AUC',
    options: {
      negatives: { type: 'string' }, references: { type: 'string' }, surrogates: { type: 'string' }, 'negative-epochs': { type: 'string' },
      'conferrable-epsilon': { type: 'string' }, positives: { type: 'string' }, queries: { type: 'string' },
    },
    check(v) {
      for (const flag of ['negatives', 'references'] as const) {
        for (const x of v[flag] ? list(v[flag] as string) : []) {
          const [a, s] = x.split(':');
          if (!(a in ARCHITECTURES) || !/^\d+$/.test(s ?? '')) throw new Error(`verify: --${flag} takes architecture:seed pairs (architectures: ${Object.keys(ARCHITECTURES).join(', ')}), got '${x}'`);
        }
      }
      if (v.surrogates && list(v.surrogates).some((q) => !/^\d+$/.test(q))) throw new Error(`verify: --surrogates takes comma-separated seeds, got '${v.surrogates}'`);
      if (v['conferrable-epsilon'] !== undefined && !/^[1-9]\d*$/.test(String(v['conferrable-epsilon']))) throw new Error(`verify: --conferrable-epsilon must be a whole number of pixel levels >= 1, got '${v['conferrable-epsilon']}'`);
      if (v['negative-epochs'] !== undefined && !/^[1-9]\d*$/.test(String(v['negative-epochs']))) throw new Error(`verify: --negative-epochs must be a whole number >= 1, got '${v['negative-epochs']}'`);
      if (v.queries && list(v.queries).some((q) => !/^[1-9]\d*$/.test(q))) throw new Error(`verify: --queries must be comma-separated whole numbers, got '${v.queries}'`);
    },
    async run({ run, values }) {
      const pairs = (x: unknown) => list(x).map((p) => ({ architecture: p.split(':')[0] as ArchitectureName, seed: Number(p.split(':')[1]) }));
      const r = await ownershipVerification(run, {
        negatives: values.negatives ? pairs(values.negatives) : undefined,
        references: values.references ? pairs(values.references) : undefined,
        surrogateSeeds: values.surrogates ? list(values.surrogates).map(Number) : undefined,
        conferrableEpsilon: values['conferrable-epsilon'] === undefined ? undefined : Number(values['conferrable-epsilon']),
        negativeEpochs: values['negative-epochs'] === undefined ? undefined : Number(values['negative-epochs']),
        positives: values.positives ? list(values.positives) : undefined,
        queryCounts: values.queries ? list(values.queries).map(Number) : undefined,
      });
      writeJson(run.path('experiments', 'verify', 'results.json'), { ...r, createdAt: new Date().toISOString() });
      for (const m of r.models) print({ experiment: 'verify', name: m.name, kind: m.kind, accuracy: m.accuracy, scores: m.scores });
      print({ experiment: 'verify-auc', fingerprints: r.fingerprints, owner: r.owner, auc: r.auc, backend: r.backend });
    },
  },
  {
    name: 'ensemble',
    usage: 'ensemble --run-dir D --models M1,M2 [--flip] [--shift PX] [--name N] [--recompute]\n' +
      '      saved copycats of D\'s oracle scored as one ensemble; each copy\'s probabilities per view are cached in D\n' +
      '      and reused while its weights are unchanged (--recompute: predict anew)',
    options: { models: { type: 'string' }, flip: { type: 'boolean' }, shift: { type: 'string' }, name: { type: 'string' }, recompute: { type: 'boolean' } },
    check(v) {
      if (!v.models) throw new Error('ensemble: --models is required (comma-separated saved copycat model directories)');
      shiftOf('ensemble', v);
    },
    async run({ run, values }) {
      const members = list(values.models);
      const shift = shiftOf('ensemble', values);
      const name = (values.name as string | undefined) ?? `${members.length}-members${viewsSuffix({ flip: !!values.flip, shift })}`;
      const { metrics, ...r } = await scoreCopycatEnsemble(run, members, { name, flip: !!values.flip, shift, cache: !values.recompute });
      print({ experiment: 'ensemble', ...r, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage });
    },
  },
  {
    name: 'members',
    usage: 'members --run-dir D --seeds 1-3 [--sets NPD-SL] [--group G] [--flip] [--shift PX] [--stop-before T]\n' +
      '      copycats differing only in their seed, then their ensemble',
    options: { seeds: { type: 'string' }, sets: { type: 'string' }, group: { type: 'string' }, flip: { type: 'boolean' }, shift: { type: 'string' } },
    stoppable: true,
    check(v) {
      if (!v.seeds) throw new Error('members: --seeds is required, e.g. --seeds 1,2,3 or --seeds 1-4');
      parseSeeds(String(v.seeds));
      oneSet('members', v.sets);
      shiftOf('members', v);
    },
    async run({ run, values, hooks }) {
      await stealLabels(run); // the members learn from the run's stolen answers; asked once, then read from the cache
      const r = await trainSeedMembers(run, parseSeeds(String(values.seeds)), {
        set: values.sets as CopycatSetName | undefined, group: values.group as string | undefined, flip: !!values.flip, shift: shiftOf('members', values), hooks,
      });
      for (const m of r.members) {
        print({ experiment: 'member', group: r.group, seed: m.seed, modelDir: m.modelDir, accuracy: m.metrics.accuracy, macroAverage: m.metrics.macroAverage, agreement: m.agreement, performanceOverTarget: m.performanceOverTarget, wallSeconds: m.wallSeconds, trainingSeconds: m.trainingSeconds });
      }
      if (r.ensemble) {
        const { metrics, ...e } = r.ensemble;
        print({ experiment: 'ensemble', ...e, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage });
      }
    },
  },
  {
    name: 'distil',
    usage: 'distil --run-dir D --teachers M1[,M2] --weight 0.5 --name N [--sets NPD-SL] [--epochs E] [--seed S] [--teacher-on all|altered] [--stop-before T]\n' +
      '      a copycat trained on D\'s stolen set with teacher targets',
    options: { teachers: { type: 'string' }, weight: { type: 'string' }, name: { type: 'string' }, sets: { type: 'string' }, epochs: { type: 'string' }, seed: { type: 'string' }, 'teacher-on': { type: 'string' } },
    stoppable: true,
    check(v) {
      if (!v.teachers || !v.name || v.weight === undefined) throw new Error('distil: --teachers (comma-separated saved copycat model directories), --weight (0..1) and --name are required');
      const weight = weightOf(v);
      if (!(weight >= 0 && weight <= 1)) throw new Error(`distil: --weight must be a number in [0, 1], got '${v.weight}'`);
      oneSet('distil', v.sets);
      if (v['teacher-on'] !== undefined && !['all', 'altered'].includes(String(v['teacher-on']))) throw new Error(`distil: --teacher-on takes all or altered, got '${v['teacher-on']}'`);
      if (v.seed !== undefined && !/^[1-9]\d*$/.test(String(v.seed))) throw new Error(`distil: --seed must be a whole number >= 1, got '${v.seed}'`);
      positiveEpochs(v);
    },
    async run({ run, values, hooks }) {
      const { metrics, history, ...r } = await distilCopycat(run, list(values.teachers), {
        name: String(values.name), weight: weightOf(values), set: values.sets as CopycatSetName | undefined, epochs: positiveEpochs(values),
        seed: values.seed === undefined ? undefined : Number(values.seed),
        teacherOn: values['teacher-on'] as 'all' | 'altered' | undefined, hooks,
      });
      print({ experiment: 'distil', ...r, accuracy: metrics.accuracy, macroAverage: metrics.macroAverage, epochs: history.length });
    },
  },
];
