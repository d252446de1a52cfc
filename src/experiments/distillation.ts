import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import { assertTrainingBackend, backendReport } from '../platform/backend';
import type { CopycatSetName } from '../config';
import { assertSavedModelDirs, loadModel } from '../io';
import type { CopyScores } from '../metrics';
import { foldBatchNorm } from '../models/fold';
import { fileSafeName, pinRecipe, readJson, Run, writeJson } from '../run';
import { fitCopycat, stolenSetForRun } from '../steps/copycatStep';
import type { StepHooks } from '../steps/inputs';
import type { EpochRecord } from '../train';
import { memberRecipe, recipeDifference, type MemberRecipe } from './seedMembers';
import { copycatTrainFor } from './trainLength';

/**
 * What a distillation run was started with. Checkpoints hold weights, not where the targets came from, so
 * a resume with other teachers, weight, student recipe or arithmetic would silently mix two runs.
 */
export interface DistillationRecipe {
  student: MemberRecipe;
  /**
   * Teacher model directories in the order given: relative to the run directory when inside it (so a run
   * restored from an archive elsewhere still matches), else absolute. Older recipes hold absolute paths.
   */
  teachers: string[];
  weight: number;
  /** --epochs when given (the schedule is scaled to it), else null: the profile's length. */
  epochs: number | null;
  /** The student's seed (initial weights, batch order, augmentation): --seed, else the run's. */
  seed: number;
  /** 'altered' when the teachers answer only for altered images (--teacher-on altered); absent: every image. */
  teacherOn?: 'altered';
}

/** '' when equal, else which part differs, with both values, for the error message. */
export function distillationRecipeDifference(a: DistillationRecipe, b: DistillationRecipe): string {
  const diffs: string[] = [];
  const student = recipeDifference(a.student, b.student);
  if (student) diffs.push(student);
  if (JSON.stringify(a.teachers) !== JSON.stringify(b.teachers)) diffs.push(`teachers: ${a.teachers.join(',')} there, ${b.teachers.join(',')} now`);
  if (a.weight !== b.weight) diffs.push(`weight: ${a.weight} there, ${b.weight} now`);
  if ((a.teacherOn ?? 'all') !== (b.teacherOn ?? 'all')) diffs.push(`teacher-on: ${a.teacherOn ?? 'all'} there, ${b.teacherOn ?? 'all'} now`);
  if (a.seed !== b.seed) diffs.push(`seed: ${a.seed} there, ${b.seed} now`);
  if (a.epochs !== b.epochs) diffs.push(`epochs: ${a.epochs ?? 'the profile\'s'} there, ${b.epochs ?? 'the profile\'s'} now`);
  return diffs.join('; ');
}

/** How a recipe names a teacher: relative to the run directory when inside it, else absolute. */
export function teacherKey(run: Pick<Run, 'dir'>, dir: string): string {
  const rel = path.relative(run.dir, path.resolve(dir));
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : path.resolve(dir);
}

export interface DistillationResult extends CopyScores {
  name: string;
  set: CopycatSetName;
  teachers: string[];
  teacherWeight: number;
  recipe: DistillationRecipe;
  queries: number;
  history: EpochRecord[];
}

/**
 * A second-generation copycat: trained on the same stolen set (no new query), with each augmented view's
 * target mixed from its stolen answer and the prediction of earlier copycats (`teachers`, averaged) on that
 * very view. Writes experiments/distillation/<name>/ (recipe.json, model, checkpoints, result.json); finished
 * runs are read back, interrupted ones resume from their last epoch, and only with the recipe they began with.
 */
export async function distilCopycat(
  run: Run,
  teacherDirs: string[],
  opts: { name: string; weight: number; set?: CopycatSetName; epochs?: number; seed?: number; teacherOn?: 'all' | 'altered'; log?: (s: string) => void; hooks?: Pick<StepHooks, 'onEpoch' | 'signal'> },
): Promise<DistillationResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const set = opts.set ?? 'NPD-SL';
  const dir = run.path('experiments', 'distillation', fileSafeName(opts.name));
  const resultFile = path.join(dir, 'result.json');
  if (fs.existsSync(resultFile)) {
    log(`distillation '${opts.name}' already done: ${resultFile}`);
    return readJson<DistillationResult>(resultFile, 'distillation result');
  }
  assertSavedModelDirs(teacherDirs, 'teacher');
  assertTrainingBackend('distillation');
  const student = memberRecipe(run, set);
  if (student.train.seed !== undefined) {
    throw new Error(`distil: the config sets copycat.train.seed (${student.train.seed}), which would override the student's own seed; remove it, --seed sets it`);
  }
  const recipe: DistillationRecipe = {
    student, teachers: teacherDirs.map((d) => teacherKey(run, d)), weight: opts.weight, epochs: opts.epochs ?? null,
    seed: opts.seed ?? run.config.seed,
    ...(opts.teacherOn === 'altered' ? { teacherOn: 'altered' as const } : {}),
  };
  const diff = pinRecipe(path.join(dir, 'recipe.json'), recipe, 'distillation recipe',
    (there, now) => distillationRecipeDifference({ ...there, teachers: there.teachers.map((d) => teacherKey(run, path.resolve(run.dir, d))) }, now));
  if (diff) throw new Error(`distil: ${dir} holds a run started with another recipe (${diff}); use another --name, or the same teachers, --weight, --epochs, --seed, --teacher-on, COPYCAT_OVERRIDES and COPYCAT_FPMATH`);
  const t0 = Date.now();
  const { data, queries } = await stolenSetForRun(run, set, log);
  const teachers: tf.LayersModel[] = [];
  try {
    for (const d of teacherDirs) {
      const m = await loadModel(d);
      // Batch norm folded into the convolutions: same predictions, one op fewer per layer at every step.
      const folded = await foldBatchNorm(m);
      if (folded) m.dispose();
      teachers.push(folded ?? m);
    }
    const predict = (x: tf.Tensor4D) => tf.tidy(() => {
      const ps = teachers.map((t) => t.predict(x) as tf.Tensor2D);
      return (ps.length === 1 ? ps[0] : tf.div(tf.addN(ps), ps.length)) as tf.Tensor2D;
    });
    const fit = await fitCopycat(run, data, dir, {
      label: `copycat ${set} distilled from ${teacherDirs.length} teacher(s)`,
      // A seed of its own: a student drawn like one of its teachers would err where that teacher errs.
      seed: recipe.seed,
      train: { targets: 'hard', ...(opts.epochs ? copycatTrainFor(run, opts.epochs) : {}) },
      hooks: { ...opts.hooks, log },
      teacher: { predict, weight: opts.weight, onlyAltered: recipe.teacherOn === 'altered' },
    });
    const result: DistillationResult = {
      name: opts.name, set, teachers: teacherDirs, teacherWeight: opts.weight, recipe, queries,
      metrics: fit.metrics, agreement: fit.agreement, performanceOverTarget: fit.performanceOverTarget, history: fit.history,
      wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label,
    };
    writeJson(resultFile, result);
    return result;
  } finally {
    for (const t of teachers) t.dispose();
  }
}
