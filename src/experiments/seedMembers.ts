import * as fs from 'fs';
import * as path from 'path';
import { assertTrainingBackend, backendReport, FpMath, processFpMath } from '../platform/backend';
import { copycatTrain, CopycatSetName } from '../config';
import type { CopyScores } from '../metrics';
import { fileSafeName, pinRecipe, readJson, Run, writeJson } from '../run';
import { fitCopycat, stolenSetForRun } from '../steps/copycatStep';
import type { StepHooks } from '../steps/inputs';
import { EnsembleResult, scoreCopycatEnsemble, viewsSuffix } from './ensembleStep';
import type { EpochRecord, TrainConfig } from '../train';

/**
 * What makes two members comparable: the same stolen set, architecture and training recipe, differing
 * only in the seed. Stored with each member so a changed COPYCAT_OVERRIDES cannot silently mix recipes.
 */
export interface MemberRecipe {
  set: CopycatSetName;
  architecture: string;
  train: Partial<TrainConfig>;
  /**
   * 'bf16' when the members' convolutions ran with bfloat16 products (COPYCAT_FPMATH), which changes their
   * digits; absent for float32, so recipes written before this field still match float32 runs.
   */
  fpmath?: 'bf16';
}

export interface SeedMemberResult extends CopyScores {
  seed: number;
  recipe: MemberRecipe;
  /** The saved model, for `npm run experiment -- ensemble --models` and for notebooks. */
  modelDir: string;
  queries: number;
  history: EpochRecord[];
  trainImagesPerSecond: number;
  /** Wall time of the process that finished this member; less than its training when it was resumed. */
  wallSeconds: number;
  /** The epochs' own times summed, across every process that trained them (resumes included). */
  trainingSeconds: number;
}

export interface SeedMembersResult {
  group: string;
  members: SeedMemberResult[];
  /** Every member averaged (see copycatEnsemble.ts); null with a single member and no test-time views. */
  ensemble: EnsembleResult | null;
}

/** Parses "1,2,3" or "1-4" (or a mix) into distinct positive whole seeds, in the order given. */
export function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`--seeds: expected whole numbers or ranges like 1,2,3 or 1-4, got '${part}'`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (a < 1 || b < a) throw new Error(`--seeds: '${part}' must be seeds >= 1 in ascending order`);
    for (let s = a; s <= b; s++) if (!seeds.includes(s)) seeds.push(s);
  }
  if (!seeds.length) throw new Error(`--seeds: no seed given in '${text}'`);
  return seeds;
}

export function memberRecipe(run: Run, set: CopycatSetName, fpmath: FpMath = processFpMath()): MemberRecipe {
  const { architecture } = run.config.copycat;
  const train = copycatTrain(run.config, set);
  return { set, architecture, train: JSON.parse(JSON.stringify(train)) as Partial<TrainConfig>, ...(fpmath === 'bf16' ? { fpmath } : {}) };
}

/** The default group name: one folder per stolen set, architecture, schedule length and (bf16) arithmetic. */
export function defaultGroup(recipe: MemberRecipe): string {
  return fileSafeName(`${recipe.set}-${recipe.architecture}-e${recipe.train.epochs ?? 'default'}${recipe.fpmath ? `-${recipe.fpmath}` : ''}`);
}

/** '' when equal, else which part differs, with both values, for the error message. */
export function recipeDifference(a: MemberRecipe, b: MemberRecipe): string {
  const keys = (x: object, y: object) => [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
  const diffs: string[] = [];
  for (const k of ['set', 'architecture'] as const) if (a[k] !== b[k]) diffs.push(`${k}: ${JSON.stringify(a[k])} there, ${JSON.stringify(b[k])} now`);
  const [fa, fb] = [a.fpmath ?? 'strict', b.fpmath ?? 'strict'];
  if (fa !== fb) diffs.push(`fpmath: ${fa} there, ${fb} now (COPYCAT_FPMATH)`);
  const ta = a.train as Record<string, unknown>;
  const tb = b.train as Record<string, unknown>;
  for (const k of keys(ta, tb)) {
    if (JSON.stringify(ta[k]) !== JSON.stringify(tb[k])) diffs.push(`train.${k}: ${JSON.stringify(ta[k])} there, ${JSON.stringify(tb[k])} now`);
  }
  return diffs.join('; ');
}

/** The epochs' times summed: what a member cost even when several processes (resumes) trained it. */
export function trainingSeconds(history: Pick<EpochRecord, 'seconds'>[]): number {
  return history.reduce((t, e) => t + e.seconds, 0);
}

/**
 * Copycats that differ only in their seed, all trained on the run's stolen answers (no new query), then
 * scored as one ensemble. Independent seeds make equally strong members whose errors overlap less than
 * those of copies trained with other recipes (docs/experiments.md), which is what averaging needs.
 *
 * Layout: experiments/members/<group>/recipe.json and s<seed>/{checkpoints,model,result.json}. A
 * finished member is read back, an interrupted one resumes from its last epoch, so the same command
 * can be re-run after a kill or in a later session, and more seeds can be added later.
 */
export async function trainSeedMembers(
  run: Run,
  seeds: number[],
  opts: { set?: CopycatSetName; group?: string; flip?: boolean; shift?: number; log?: (s: string) => void; hooks?: Pick<StepHooks, 'onEpoch' | 'signal'> } = {},
): Promise<SeedMembersResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const set = opts.set ?? 'NPD-SL';
  const recipe = memberRecipe(run, set);
  if (recipe.train.seed !== undefined) {
    throw new Error(`members: the config sets copycat.train.seed (${recipe.train.seed}), which would give every member the same batch order and augmentation; remove it, --seeds sets each member's seed`);
  }
  const group = opts.group ? fileSafeName(opts.group) : defaultGroup(recipe);
  const groupDir = run.path('experiments', 'members', group);
  const diff = pinRecipe(path.join(groupDir, 'recipe.json'), recipe, 'member recipe', recipeDifference);
  if (diff) throw new Error(`members: ${groupDir} holds members of another recipe (${diff}); use another --group or the same COPYCAT_OVERRIDES and COPYCAT_FPMATH`);
  const members: SeedMemberResult[] = [];
  let stolen: Awaited<ReturnType<typeof stolenSetForRun>> | undefined; // loaded once, only if a member needs training
  for (const seed of seeds) {
    const dir = path.join(groupDir, `s${seed}`);
    const resultFile = path.join(dir, 'result.json');
    if (fs.existsSync(resultFile)) {
      log(`member seed ${seed} already trained: ${resultFile}`);
      // The model directory is re-derived: the run directory may have moved since.
      const done = readJson<SeedMemberResult>(resultFile, `member seed ${seed} result`);
      // Members written before trainingSeconds existed get it from their history.
      members.push({ ...done, modelDir: path.join(dir, 'model'), trainingSeconds: done.trainingSeconds ?? trainingSeconds(done.history) });
      continue;
    }
    assertTrainingBackend(`copycat member training (seed ${seed})`);
    const t0 = Date.now();
    stolen ??= await stolenSetForRun(run, set, log);
    const { data, queries } = stolen;
    const fit = await fitCopycat(run, data, dir, { label: `copycat ${set} seed ${seed}`, set, seed, hooks: { ...opts.hooks, log } });
    const result: SeedMemberResult = {
      seed, recipe, modelDir: path.join(dir, 'model'), queries, metrics: fit.metrics, agreement: fit.agreement,
      performanceOverTarget: fit.performanceOverTarget, history: fit.history, trainImagesPerSecond: fit.trainImagesPerSecond,
      wallSeconds: (Date.now() - t0) / 1000, trainingSeconds: trainingSeconds(fit.history), backend: backendReport().label,
    };
    writeJson(resultFile, result);
    members.push(result);
  }
  const views = !!opts.flip || (opts.shift ?? 0) > 0;
  const ensemble = members.length > 1 || views
    ? await scoreCopycatEnsemble(run, members.map((m) => m.modelDir), {
      name: `${group}-s${seeds.join('s')}${viewsSuffix(opts)}`,
      flip: opts.flip, shift: opts.shift, log,
    })
    : null;
  return { group, members, ensemble };
}
