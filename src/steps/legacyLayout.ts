import * as fs from 'fs';
import * as path from 'path';
import type { FpMath } from '../platform/backend';
import { copycatTrain, type CopycatSetName, type ExperimentConfig } from '../config';
import { normalizeAnswerSpec } from '../oracle/answers';
import { readJson, Run, STEP_FILE, stolenFile, writeJson } from '../run';
import { loadStolenLabels, stolenSetSummary } from '../stolenLabels';
import { resolveTrainConfig, type EpochRecord } from '../train';

/**
 * Runs made before step keys kept one oracle, one labeling and one copycat per set directly in
 * oracle/, stolen/ and copycats/<set>/ (the archived reference run among them). They are moved, once,
 * into variant folders: under the current config's key when what their result records (architecture,
 * image counts, epochs, answer mode) matches that config (and under the key of the arithmetic it
 * recorded), else into a `legacy-<time>`
 * folder that is listed but never reused. Nothing is deleted but the derived stolen/summary.json.
 */

interface Target {
  dir: string;
  key: string;
  record: string;
  inputs: object;
}

/** The variants of the current config, in the arithmetic an old result records it was made with. */
export interface LegacyTargets {
  config: ExperimentConfig;
  oracle(arithmetic: FpMath): Target;
  stolen(set: 'NPD-SL' | 'PD-SL'): Target;
  copycat(set: string, arithmetic: FpMath): Target;
  /** The answer cache of the (by then adopted) oracle. */
  answersFile(): string;
}

const checked = new Set<string>();
const MODEL_PARTS = ['model', 'checkpoints', 'result.json', 'tensorboard'];

function hasAny(dir: string, names: string[]): boolean {
  return names.some((n) => fs.existsSync(path.join(dir, n)));
}

function moveParts(from: string, names: string[], to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const n of names) if (fs.existsSync(path.join(from, n))) fs.renameSync(path.join(from, n), path.join(to, n));
  for (const f of fs.readdirSync(from).filter((f) => f.endsWith('.log'))) fs.renameSync(path.join(from, f), path.join(to, f));
}

const stamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');

/**
 * Moves `names` of `from` into the target variant (when `why` is '') or into a legacy folder (why:
 * the reason it is not reused). Returns whether it was adopted.
 */
function settle(step: string, name: string, from: string, names: string[], target: Target, why: string, profile: string, log: (s: string) => void): boolean {
  const reason = why || (fs.existsSync(target.dir) ? `a variant with key ${target.key} exists already` : '');
  const when = (() => {
    const r = path.join(from, 'result.json');
    return (fs.existsSync(r) ? fs.statSync(r).mtime : new Date()).toISOString();
  })();
  if (!reason) {
    moveParts(from, names, target.dir);
    writeJson(target.record, { ...target.inputs, createdAt: when, adopted: 'adopted from the layout before step keys' });
    log(`${name}: moved the result made before step keys into key ${target.key} (it matches the current config)`);
    return true;
  }
  const key = `legacy-${stamp()}`;
  const dir = path.join(path.dirname(target.dir), key);
  moveParts(from, names, dir);
  writeJson(path.join(dir, STEP_FILE), {
    format: 'copycat-step', version: 1, step, name, key, profile, settings: null, upstream: {}, arithmetic: 'strict', createdAt: when, adopted: `not reused: ${reason}`,
  });
  log(`${name}: the result made before step keys does not match the current config (${reason}); kept in ${dir}, not reused`);
  return false;
}

/** The result.json a stolen variant gets when its labels were made before step keys (what stealLabels writes). */
function writeStolenSummary(run: Run, target: Target, set: string): void {
  const file = stolenFile(target.dir, set);
  writeJson(path.join(target.dir, 'result.json'), stolenSetSummary(loadStolenLabels(file), path.relative(run.dir, file), target.key));
}

interface LegacyResult {
  architecture?: string;
  trainImages?: number;
  testImages?: number;
  history?: EpochRecord[];
}

/** The arithmetic a legacy result's epochs ran with ('strict' when it was not recorded). */
function arithmeticOf(dir: string): FpMath {
  const file = path.join(dir, 'result.json');
  if (!fs.existsSync(file)) return 'strict';
  return readJson<LegacyResult>(file, 'legacy result').history?.map((h) => h.fpmath).filter((f) => f !== undefined).pop() ?? 'strict';
}

/** Why a legacy oracle/copycat result cannot stand for the target config, or '' if it can. */
function modelMismatch(dir: string, want: { architecture: string; epochs: number; trainImages?: number; testImages?: number }): string {
  const file = path.join(dir, 'result.json');
  if (!fs.existsSync(file) || !fs.existsSync(path.join(dir, 'model', 'model.json'))) return 'it never finished';
  const r = readJson<LegacyResult>(file, 'legacy result');
  const diffs = [
    r.architecture !== want.architecture && `architecture ${r.architecture} ≠ ${want.architecture}`,
    (r.history?.length ?? -1) !== want.epochs && `${r.history?.length} epochs ≠ ${want.epochs}`,
    want.trainImages !== undefined && r.trainImages !== want.trainImages && `${r.trainImages} training images ≠ ${want.trainImages}`,
    want.testImages !== undefined && r.testImages !== want.testImages && `${r.testImages} test images ≠ ${want.testImages}`,
  ].filter(Boolean);
  return diffs.join(', ');
}

export function adoptLegacyLayout(run: Run, targets: () => LegacyTargets, log: (s: string) => void = (s) => console.log(s)): void {
  if (checked.has(run.dir)) return;
  checked.add(run.dir);
  const oracleDir = run.path('oracle');
  const stolenDir = run.path('stolen');
  const copycatsDir = run.path('copycats');
  const legacyOracle = hasAny(oracleDir, MODEL_PARTS);
  const legacySets = (['NPD-SL', 'PD-SL'] as const).filter((s) => fs.existsSync(path.join(stolenDir, `${s}.json`)));
  const legacyCache = fs.existsSync(path.join(stolenDir, 'queries.jsonl'));
  const legacyCopies = fs.existsSync(copycatsDir)
    ? fs.readdirSync(copycatsDir).filter((d) => hasAny(path.join(copycatsDir, d), MODEL_PARTS))
    : [];
  if (!legacyOracle && !legacySets.length && !legacyCache && !legacyCopies.length) return;

  const t = targets();
  const c = t.config;
  const profile = c.profile;
  let oracleAdopted = false;
  if (legacyOracle) {
    const why = modelMismatch(oracleDir, {
      architecture: c.oracle.architecture, epochs: resolveTrainConfig(c.oracle.train).epochs,
      trainImages: c.data.oracleTrainImages ?? 50000, testImages: c.data.testImages ?? 10000,
    });
    oracleAdopted = settle('oracle', 'oracle', oracleDir, MODEL_PARTS, t.oracle(arithmeticOf(oracleDir)), why, profile, log);
  }
  const adoptedSets = new Set<string>();
  for (const set of legacySets) {
    const file = path.join(stolenDir, `${set}.json`);
    const s = readJson<{ n: number; oracle?: { answer?: unknown } }>(file, `legacy ${set}`);
    const want = set === 'NPD-SL' ? c.data.npdImages : (c.data.pdImages ?? c.data.oracleTrainImages ?? 50000);
    const mode = normalizeAnswerSpec(s.oracle?.answer as string | undefined).mode;
    const why = [
      !oracleAdopted && 'its oracle was not adopted',
      want !== null && s.n !== want && `${s.n} images ≠ ${want}`,
      mode !== c.query.mode && `answer mode ${mode} ≠ ${c.query.mode}`,
    ].filter(Boolean).join(', ');
    const target = t.stolen(set);
    // A set file is moved alone; a legacy folder for it gets the same name inside.
    const tmp = path.join(stolenDir, `.legacy-${set}`);
    fs.mkdirSync(tmp, { recursive: true });
    fs.renameSync(file, stolenFile(tmp, set));
    if (settle('stolen', set, tmp, [`${set}.json`], target, why, profile, log)) {
      adoptedSets.add(set);
      writeStolenSummary(run, target, set);
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (legacyCache) {
    const answers = oracleAdopted ? t.answersFile() : '';
    const to = answers && !fs.existsSync(answers) ? answers : path.join(stolenDir, `legacy-${stamp()}-queries.jsonl`);
    fs.renameSync(path.join(stolenDir, 'queries.jsonl'), to);
    log(`stolen: the answers paid before step keys are now ${path.relative(run.dir, to)}`);
  }
  fs.rmSync(path.join(stolenDir, 'summary.json'), { force: true });
  for (const dirName of legacyCopies) {
    const set = dirName.replace('_', '+');
    const from = path.join(copycatsDir, dirName);
    const parts = set === 'NPD+PD-SL' ? ['NPD-SL', 'PD-SL'] : [set];
    const missing = parts.filter((p) => !adoptedSets.has(p));
    const why = [
      missing.length && `its stolen set ${missing.join(' and ')} was not adopted`,
      modelMismatch(from, { architecture: c.copycat.architecture, epochs: resolveTrainConfig(copycatTrain(c, set as CopycatSetName)).epochs }),
    ].filter(Boolean).join(', ');
    settle('copycat', set, from, MODEL_PARTS, t.copycat(set, arithmeticOf(from)), why, profile, log);
  }
}
