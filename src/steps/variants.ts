import * as fs from 'fs';
import * as path from 'path';
import { FpMath, FPMATH_MODES, processFpMath } from '../platform/backend';
import { copycatTrain, CopycatSetName, ExperimentConfig, PROFILES, ProfileName } from '../config';
import { answersFile, formatChanges, keyOf, readJson, Run, settingChanges, StepKind, stepRoot, variantFolders, VariantPaths, variantPaths, writeJson } from '../run';
import { projectRoot } from '../paths';
import { loadStolenLabels } from '../stolenLabels';
import { resolveSelection } from '../querySelection';
import { adoptLegacyLayout } from './legacyLayout';

/**
 * Which variant of a step the run's current config asks for, and whether it is done. A variant's key
 * is the hash of exactly what the step depends on: the config values it reads (its "settings"), the
 * keys of the steps it reads from, and the arithmetic, so a changed setting never finds an old result
 * and an unchanged one never computes twice (docs/runs.md).
 */

export type StolenSetName = 'NPD-SL' | 'PD-SL';

/** step.json: what a variant was made from, written when it starts. */
export interface StepRecord {
  format: 'copycat-step';
  version: 1;
  step: StepKind;
  /** 'oracle', or the set: 'NPD-SL', 'PD-SL', 'NPD+PD-SL'. */
  name: string;
  key: string;
  /** The profile whose run this is (for comparing settings with its defaults). */
  profile: string;
  /** The config values the step reads, as a partial config. */
  settings: unknown;
  /** Keys of the variants it reads from, e.g. { oracle: '3f2a…' }. */
  upstream: Record<string, string>;
  /** oneDNN arithmetic of the native backend ('bf16' changes the digits). */
  arithmetic: FpMath;
  createdAt: string;
  /** Set when the folder was moved here from the layout before step keys (see legacyLayout.ts). */
  adopted?: string;
}

export interface Variant extends VariantPaths {
  kind: StepKind;
  name: string;
  key: string;
  /** The record this variant has or will get. */
  inputs: Omit<StepRecord, 'createdAt' | 'adopted'>;
}

// What each step reads from the config. Adding a field here changes that step's keys, as it should.
const pick = {
  oracle: (c: ExperimentConfig) => ({
    seed: c.seed,
    data: { oracleTrainImages: c.data.oracleTrainImages, testImages: c.data.testImages, curveTestImages: c.data.curveTestImages },
    oracle: c.oracle,
  }),
  stolen: (c: ExperimentConfig, set: StolenSetName) => ({
    seed: c.seed,
    data: set === 'NPD-SL'
      ? { npdSource: c.data.npdSource, npdImages: c.data.npdImages, imageSize: c.data.imageSize }
      : { oracleTrainImages: c.data.oracleTrainImages, pdImages: c.data.pdImages },
    query: { mode: c.query.mode, pricePer1000: c.query.pricePer1000, ...(set === 'NPD-SL' && selectionActive(c) ? { selection: resolveSelection(c.query.selection) } : {}) },
    // Rounds of active selection train copies of the copycat's recipe to choose with, never on the pool
    // (roundCopyRecipe): a semi-supervised copy buys the same images as the supervised one and shares its set.
    ...(set === 'NPD-SL' && selectionActive(c) ? { copycat: { architecture: c.copycat.architecture, train: withoutPool(copycatTrain(c, 'NPD-SL')) } } : {}),
  }),
  // The set's own recipe (copycat.trainBySet merged over copycat.train): without a per-set entry the key is as before.
  copycat: (c: ExperimentConfig, set: CopycatSetName) => {
    const train = copycatTrain(c, set);
    return {
      seed: c.seed,
      // The pool is read only by a semi-supervised recipe (it is then trained on); keys of other copies stay as they were.
      data: { testImages: c.data.testImages, curveTestImages: c.data.curveTestImages, ...(train.semiSupervised ? { pool: c.data.pool ?? null } : {}) },
      copycat: { architecture: c.copycat.architecture, train },
    };
  },
};

const withoutPool = (t: ReturnType<typeof copycatTrain>): ReturnType<typeof copycatTrain> => {
  const { semiSupervised: _unused, ...rest } = t;
  return rest;
};

/** True when the NPD images to pay for are chosen in rounds (query.selection other than random). */
export const selectionActive = (c: Pick<ExperimentConfig, 'query'>): boolean => c.query.selection != null && resolveSelection(c.query.selection).strategy !== 'random';

/** The stolen sets a copycat set trains on. */
export const stolenPartsOf = (set: string): StolenSetName[] => (set === 'NPD+PD-SL' ? ['NPD-SL', 'PD-SL'] : [set as StolenSetName]);

function variant(run: Run, kind: StepKind, name: string, settings: unknown, upstream: Record<string, string>, arithmetic: FpMath): Variant {
  const inputs = { format: 'copycat-step' as const, version: 1 as const, step: kind, name, profile: run.config.profile, settings, upstream, arithmetic };
  const key = keyOf({ step: kind, name, settings, upstream, arithmetic });
  const dir = path.join(stepRoot(run, kind, kind === 'oracle' ? undefined : name), key);
  return { ...variantPaths(dir), kind, name, key, inputs: { ...inputs, key } };
}

/**
 * The variant of `arithmetic`, unless only a finished twin made in the other arithmetic exists: then
 * that one. A process that trains copycats with bf16 products (COPYCAT_FPMATH=bf16) must still find the
 * oracle trained in float32, not train another; `exact` (force, a prune) asks for the variant itself.
 */
function finishedTwin(make: (a: FpMath) => Variant, arithmetic: FpMath, exact = false): Variant {
  const own = make(arithmetic);
  if (exact || fs.existsSync(own.dir)) return own;
  const twin = FPMATH_MODES.filter((a) => a !== arithmetic).map(make).find((v) => fs.existsSync(v.result));
  return twin ?? own;
}

const oracleOf = (run: Run, arithmetic: FpMath, exact = false): Variant =>
  finishedTwin((a) => variant(run, 'oracle', 'oracle', pick.oracle(run.config), {}, a), arithmetic, exact);

/**
 * A stolen-label set's variant: the labels depend on the oracle and on the images asked, not on the
 * arithmetic of this process (the oracle's answers are whatever it answered).
 */
const stolenOf = (run: Run, set: StolenSetName, arithmetic: FpMath): Variant => {
  const outside = outsideStolenFile(run, set);
  // An outside set (npm run steal) is what its file holds: keyed by its answers, not by the run's oracle.
  if (outside) return variant(run, 'stolen', set, { query: { stolenFile: outsideIdentity(outside) } }, {}, 'strict');
  return variant(run, 'stolen', set, pick.stolen(run.config, set), { oracle: oracleOf(run, arithmetic).key }, 'strict');
};

const identities = new Map<string, { mtimeMs: number; size: number; id: string }>();

/**
 * What makes an outside stolen set itself: its images (hashes), answers and oracle, not the path or the
 * time it was written. Remembered per file, size and mtime: a stolen set of 80k images is 5 MB of JSON.
 */
function outsideIdentity(file: string): string {
  if (!fs.existsSync(file)) throw new Error(`query.stolenFile: ${file} not found (make it with npm run steal, docs/steal.md)`);
  const st = fs.statSync(file);
  const known = identities.get(file);
  if (known && known.mtimeMs === st.mtimeMs && known.size === st.size) return known.id;
  const s = loadStolenLabels(file);
  const id = keyOf({ hashes: s.hashes, labels: s.labels, answers: s.answers ?? null, oracle: { name: s.oracle.name, answer: s.oracle.answer, classNames: s.oracle.classNames ?? null } });
  identities.set(file, { mtimeMs: st.mtimeMs, size: st.size, id });
  return id;
}

/** The outside stolen-set file the run's config names for `set`, or undefined (the run's oracle answers). */
export function outsideStolenFile(run: Run, set: string): string | undefined {
  const f = set === 'NPD-SL' ? run.config.query.stolenFile : undefined;
  // Relative to the project root: the same file whether a notebook (cwd notebooks/) or a script names it.
  return f ? path.resolve(projectRoot(), f) : undefined;
}

const answersKeyOf = (run: Run, arithmetic: FpMath): string => keyOf({ oracle: oracleOf(run, arithmetic).key, mode: run.config.query.mode });

function copycatOf(run: Run, set: string, arithmetic: FpMath, exact = false): Variant {
  return finishedTwin((a) => {
    const upstream: Record<string, string> = { oracle: oracleOf(run, arithmetic).key };
    for (const part of stolenPartsOf(set)) upstream[`stolen ${part}`] = stolenOf(run, part, arithmetic).key;
    return variant(run, 'copycat', set, pick.copycat(run.config, set as CopycatSetName), upstream, a);
  }, arithmetic, exact);
}

/** Runs made before step keys are moved into variant folders the first time a step looks (legacyLayout.ts). */
function adopted(run: Run): void {
  adoptLegacyLayout(run, () => ({
    config: run.config,
    oracle: (a) => oracleOf(run, a, true),
    stolen: (set) => stolenOf(run, set, processFpMath()),
    copycat: (set, a) => copycatOf(run, set, a, true),
    answersFile: () => answersFile(run, answersKeyOf(run, processFpMath())),
  }));
}

/** The oracle variant of the run's config (`exact`: in this arithmetic only, see finishedTwin). */
export function oracleVariant(run: Run, arithmetic: FpMath = processFpMath(), exact = false): Variant {
  adopted(run);
  return oracleOf(run, arithmetic, exact);
}

/** The stolen-label set variant of the run's config (it reads the oracle's). */
export function stolenVariant(run: Run, set: StolenSetName, arithmetic: FpMath = processFpMath()): Variant {
  adopted(run);
  return stolenOf(run, set, arithmetic);
}

/** The query cache of the run's oracle in the run's answer mode: every answer paid to it, whichever set asked. */
export function answersFileFor(run: Run, arithmetic: FpMath = processFpMath()): string {
  adopted(run);
  return answersFile(run, answersKeyOf(run, arithmetic));
}

/** A copycat's variant: its own settings, the stolen sets it learns from, and the oracle it is scored against. */
export function copycatVariant(run: Run, set: string, arithmetic: FpMath = processFpMath(), exact = false): Variant {
  adopted(run);
  return copycatOf(run, set, arithmetic, exact);
}

export const isFinished = (v: Pick<Variant, 'result'>): boolean => fs.existsSync(v.result);

export function readStepRecord(file: string): StepRecord {
  const r = readJson<StepRecord>(file, 'step record');
  if (r.format !== 'copycat-step' || typeof r.key !== 'string' || typeof r.step !== 'string') {
    throw new Error(`step record ${file}: expected format 'copycat-step' with step and key fields`);
  }
  return r;
}

/** Every variant the run holds (finished or not), oldest first. */
export function listVariants(run: Run): (StepRecord & { dir: string; finished: boolean })[] {
  return variantFolders(run)
    .map(({ dir }) => ({ ...readStepRecord(variantPaths(dir).record), dir, finished: isFinished(variantPaths(dir)) }))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** A variant's settings as the profile's defaults would give them (for "what differs from the profile"). */
export function defaultSettings(record: Pick<StepRecord, 'step' | 'name' | 'profile'>): unknown {
  const base = PROFILES[record.profile as ProfileName];
  if (!base) return undefined;
  if (record.step === 'oracle') return pick.oracle(base);
  if (record.step === 'stolen') return pick.stolen(base, record.name as StolenSetName);
  return pick.copycat(base, record.name as CopycatSetName);
}

/** How a variant differs from another: settings, upstream keys and arithmetic, leaf by leaf. */
export function variantChanges(before: Pick<StepRecord, 'settings' | 'upstream' | 'arithmetic'>, after: Pick<StepRecord, 'settings' | 'upstream' | 'arithmetic'>) {
  const view = (r: Pick<StepRecord, 'settings' | 'upstream' | 'arithmetic'>) => ({ ...(r.settings as object), upstream: r.upstream, arithmetic: r.arithmetic });
  return settingChanges(view(before), view(after));
}

const when = (iso: string): string => iso.replace('T', ' ').slice(0, 16);

/**
 * Decides what a step does with its variant and says so in one line: 'reuse' a finished result, or
 * 'compute' it (fresh, resumed from its own checkpoint, or forced afresh). Writes step.json before any
 * computing, so an unfinished variant is listable too.
 */
export function beginVariant(v: Variant, opts: { label: string; force?: boolean; log: (line: string) => void; verb?: string }): 'reuse' | 'compute' {
  const verb = opts.verb ?? 'training';
  if (!opts.force && isFinished(v)) {
    const rec = fs.existsSync(v.record) ? readStepRecord(v.record) : undefined;
    const made = fs.statSync(v.result).mtime.toISOString();
    const other = v.inputs.arithmetic !== processFpMath() ? `, computed with ${v.inputs.arithmetic} arithmetic` : '';
    opts.log(`${opts.label}: reused (key ${v.key}, made ${when(made)}${other}${rec?.adopted ? `, ${rec.adopted}` : ''})`);
    return 'reuse';
  }
  if (opts.force) {
    const had = fs.existsSync(v.result) || fs.existsSync(v.checkpoints);
    for (const p of [v.result, v.model, v.checkpoints, v.tensorboard]) fs.rmSync(p, { recursive: true, force: true });
    opts.log(`${opts.label}: force: fresh start of key ${v.key}${had ? ' (its result and checkpoint were removed)' : ''}: ${verb}`);
  } else if (fs.existsSync(v.checkpoints)) {
    opts.log(`${opts.label}: resuming key ${v.key} from its own checkpoint: ${verb}`);
  } else {
    const others = siblingsOf(v);
    const last = others[others.length - 1];
    const changes = last ? variantChanges(last, v.inputs) : [];
    opts.log(last
      ? `${opts.label}: new settings (${changes.length ? formatChanges(changes) : 'as before'}; key ${v.key}): ${verb}`
      : `${opts.label}: first variant in this run (key ${v.key}): ${verb}`);
  }
  if (!fs.existsSync(v.record)) writeJson(v.record, { ...v.inputs, createdAt: new Date().toISOString() } satisfies StepRecord);
  return 'compute';
}

/** The other variants of the same step (same kind and name), oldest first. */
function siblingsOf(v: Variant): StepRecord[] {
  const root = path.dirname(v.dir);
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root)
    .map((k) => variantPaths(path.join(root, k)).record)
    .filter((f) => fs.existsSync(f))
    .map(readStepRecord)
    .filter((r) => r.key !== v.key && !r.adopted?.startsWith('not reused'))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}
