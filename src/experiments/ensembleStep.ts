import type { LayersModel } from '@tensorflow/tfjs';
import { backendReport } from '../platform/backend';
import { evaluateEnsemble, testTimeViews } from '../copycatEnsemble';
import { compareWithOracle, scoreProbabilities } from '../evaluate';
import { assertSavedModelDirs, loadModel } from '../io';
import type { CopyScores } from '../metrics';
import { fileSafeName, readJson, Run, writeJson } from '../run';
import { cifarForRun } from '../steps/inputs';
import { oracleEvaluation, readOracleResult } from '../steps/oracleStep';
import { viewProbabilityCache } from './viewProbabilityCache';

export interface EnsembleResult extends CopyScores {
  name: string;
  /** Model directories of the members (each a saved copycat). */
  members: string[];
  flip: boolean;
  /** Pixels of the shifted test-time views (0 = none); see EnsembleOptions.shift. */
  shift: number;
  /** Each member alone, for comparison (no flip). */
  memberScores: { dir: string; accuracy: number; macroAverage: number; agreement: number }[];
  /** Member views read from the view-probability cache / predicted now (see viewProbabilityCache.ts). */
  viewsFromCache: number;
  viewsPredicted: number;
}

/** The part of an ensemble's name that tells its test-time views: '-flip', '-shift2', '-flip-shift2' or ''. */
export function viewsSuffix(opts: { flip?: boolean; shift?: number }): string {
  return `${opts.flip ? '-flip' : ''}${opts.shift ? `-shift${opts.shift}` : ''}`;
}

/**
 * Scores copycats trained on this run's stolen labels as one ensemble (see copycatEnsemble.ts) against
 * the run's oracle on its test set, and writes experiments/ensembles/<name>.json. Members may come from
 * other run directories as long as they attacked the same oracle; that is the caller's claim to keep.
 */
export async function scoreCopycatEnsemble(
  run: Run,
  memberDirs: string[],
  opts: { name: string; flip?: boolean; shift?: number; log?: (s: string) => void; /** false: predict every view again */ cache?: boolean },
): Promise<EnsembleResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  assertSavedModelDirs(memberDirs, 'ensemble member');
  const t0 = Date.now();
  const oracle = oracleEvaluation(readOracleResult(run));
  const { test } = await cifarForRun(run);
  const models: LayersModel[] = [];
  try {
    for (const d of memberDirs) models.push(await loadModel(d));
    const memberScores: EnsembleResult['memberScores'] = [];
    // Each member is scored alone from the plain-view predictions the ensemble makes anyway.
    const onMember = (i: number, probs: Float32Array): void => {
      const ev = scoreProbabilities(probs, probs.length / test.n, test, Date.now());
      const cmp = compareWithOracle(ev, oracle);
      memberScores.push({ dir: memberDirs[i], accuracy: ev.metrics.accuracy, macroAverage: ev.metrics.macroAverage, agreement: cmp.agreement });
      log(`member ${memberDirs[i]}: accuracy ${(100 * ev.metrics.accuracy).toFixed(2)} %, agreement ${(100 * cmp.agreement).toFixed(2)} %`);
    };
    const report = backendReport();
    const viewCache = opts.cache === false ? undefined : viewProbabilityCache(
      run, memberDirs, test.images, (i) => test.n * (models[i].outputs[0].shape[1] ?? 0),
      // The digits depend on the backend and its arithmetic (bf16 products on AMX CPUs change them).
      `${report.backend}: ${report.label} | tfjs ${report.tfjsVersion} | fpmath ${report.fpmath ?? 'strict'}`, log);
    const ev = await evaluateEnsemble(models, test, { flip: opts.flip, shift: opts.shift, onMember, viewCache });
    const cmp = compareWithOracle(ev, oracle);
    const result: EnsembleResult = {
      name: opts.name, members: memberDirs, flip: !!opts.flip, shift: opts.shift ?? 0, metrics: ev.metrics, agreement: cmp.agreement,
      performanceOverTarget: cmp.performanceOverTarget, memberScores,
      viewsFromCache: viewCache?.hits ?? 0, viewsPredicted: viewCache?.misses ?? memberDirs.length * testTimeViews(opts).length, wallSeconds: (Date.now() - t0) / 1000, backend: report.label,
    };
    writeJson(run.path('experiments', 'ensembles', `${fileSafeName(opts.name)}.json`), result);
    return result;
  } finally {
    for (const m of models) m.dispose();
  }
}
