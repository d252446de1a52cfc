import * as fs from 'fs';
import * as path from 'path';
import type { Run } from './run';

/**
 * The layout of a run folder, as named paths (no other module spells these folders out):
 *
 *   config.json                          the settings the run was last opened with
 *   oracle/<key>/                        one folder per set of oracle inputs (a "variant")
 *   stolen/<set>/<key>/<set>.json        one stolen-label set per labeling
 *   stolen/answers-<key>.jsonl           every answer paid to one oracle in one answer mode
 *   copycats/<set>/<key>/                one folder per copycat variant
 *   experiments/, notebooks/, figures/, results.{md,csv,json}
 *
 * A variant folder holds step.json (its inputs, written when it starts), and as it goes model/,
 * checkpoints/, tensorboard/ and result.json (written last: its presence means "finished").
 */

export type StepKind = 'oracle' | 'stolen' | 'copycat';
export const STEP_FILE = 'step.json';

/** Run-relative folder of the ensembles' cached test-set probabilities; derived data, left out of archives. */
export const VIEW_CACHE_DIR = 'experiments/ensembles/view-probabilities';

/** A copycat set's folder name ('NPD+PD-SL' → 'NPD_PD-SL': '+' is awkward in URLs and shells). */
export const copycatDirName = (set: string): string => set.replace('+', '_');

/** The folder that holds a step's variants: oracle, stolen/<set>, copycats/<set>. */
export function stepRoot(run: Run, kind: StepKind, name?: string): string {
  if (kind === 'oracle') return run.path('oracle');
  if (!name) throw new Error(`stepRoot: a ${kind} step needs its set name`);
  return kind === 'stolen' ? run.path('stolen', name) : run.path('copycats', copycatDirName(name));
}

/** The named files of one variant folder. */
export interface VariantPaths {
  dir: string;
  record: string;
  result: string;
  model: string;
  checkpoints: string;
  tensorboard: string;
}

export function variantPaths(dir: string): VariantPaths {
  return {
    dir,
    record: path.join(dir, STEP_FILE),
    result: path.join(dir, 'result.json'),
    model: path.join(dir, 'model'),
    checkpoints: path.join(dir, 'checkpoints'),
    tensorboard: path.join(dir, 'tensorboard'),
  };
}

/** The stolen-label file inside a stolen variant folder. */
export const stolenFile = (dir: string, set: string): string => path.join(dir, `${set}.json`);

/** The query cache of one oracle variant in one answer mode (shared by every labeling of it). */
export const answersFile = (run: Run, key: string): string => run.path('stolen', `answers-${key}.jsonl`);

/** Every variant folder of the run (those with a step.json), by step. */
export function variantFolders(run: Run): { kind: StepKind; dir: string }[] {
  const out: { kind: StepKind; dir: string }[] = [];
  const scan = (kind: StepKind, root: string, depth: number): void => {
    if (!fs.existsSync(root)) return;
    for (const e of fs.readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
      const dir = path.join(root, e.name);
      if (depth > 0) scan(kind, dir, depth - 1);
      else if (fs.existsSync(path.join(dir, STEP_FILE))) out.push({ kind, dir });
    }
  };
  scan('oracle', run.path('oracle'), 0);
  scan('stolen', run.path('stolen'), 1);
  scan('copycat', run.path('copycats'), 1);
  return out;
}
