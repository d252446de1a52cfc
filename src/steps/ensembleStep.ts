import * as fs from 'fs';
import * as path from 'path';
import { backendReport } from '../backend';
import { evaluateEnsemble } from '../copycatEnsemble';
import { compareWithOracle } from '../evaluate';
import { loadModel, MODEL_JSON } from '../io';
import type { Metrics } from '../metrics';
import { readJson, Run, writeJson } from '../run';
import { cifarForRun, OracleResult, oracleEvaluation } from './oracleStep';

export interface EnsembleResult {
  name: string;
  /** Model directories of the members (each a saved copycat). */
  members: string[];
  flip: boolean;
  metrics: Metrics;
  agreement: number;
  performanceOverTarget: number;
  /** Each member alone, for comparison (no flip). */
  memberScores: { dir: string; accuracy: number; macroAverage: number; agreement: number }[];
  wallSeconds: number;
  backend: string;
}

/**
 * Scores copycats trained on this run's stolen labels as one ensemble (see copycatEnsemble.ts) against
 * the run's oracle on its test set, and writes experiments/ensembles/<name>.json. Members may come from
 * other run directories as long as they attacked the same oracle; that is the caller's claim to keep.
 */
export async function scoreCopycatEnsemble(run: Run, memberDirs: string[], opts: { name: string; flip?: boolean; log?: (s: string) => void }): Promise<EnsembleResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  if (memberDirs.length === 0) throw new Error('scoreCopycatEnsemble: no member model directories given');
  for (const d of memberDirs) {
    if (!fs.existsSync(path.join(d, MODEL_JSON))) throw new Error(`ensemble member '${d}': no ${MODEL_JSON} there (expected a saved copycat model directory, e.g. data/runs/full-1/copycats/NPD-SL/model)`);
  }
  const t0 = Date.now();
  const oracle = oracleEvaluation(readJson<OracleResult>(run.path('oracle', 'result.json'), 'oracle result'));
  const { test } = await cifarForRun(run);
  const models = [];
  try {
    for (const d of memberDirs) models.push(await loadModel(d));
    const memberScores = [];
    for (let i = 0; i < models.length; i++) {
      const ev = await evaluateEnsemble([models[i]], test);
      const cmp = compareWithOracle(ev, oracle);
      memberScores.push({ dir: memberDirs[i], accuracy: ev.metrics.accuracy, macroAverage: ev.metrics.macroAverage, agreement: cmp.agreement });
      log(`member ${memberDirs[i]}: accuracy ${(100 * ev.metrics.accuracy).toFixed(2)} %, agreement ${(100 * cmp.agreement).toFixed(2)} %`);
    }
    const ev = await evaluateEnsemble(models, test, { flip: opts.flip });
    const cmp = compareWithOracle(ev, oracle);
    const result: EnsembleResult = {
      name: opts.name, members: memberDirs, flip: !!opts.flip, metrics: ev.metrics, agreement: cmp.agreement,
      performanceOverTarget: cmp.performanceOverTarget, memberScores, wallSeconds: (Date.now() - t0) / 1000, backend: backendReport().label,
    };
    writeJson(run.path('experiments', 'ensembles', `${opts.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`), result);
    return result;
  } finally {
    for (const m of models) m.dispose();
  }
}
