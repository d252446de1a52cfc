/**
 * `npx ts-node --transpile-only scripts/readme-figures.ts <run-dir> [out-dir]`: PNG figures of a finished
 * run for the README (label histogram, per-class F1, oracle training curves, copycat confusion, and the
 * query-budget and defence experiments when the run has them), rendered
 * with Debian chromium.
 */
import * as fs from 'fs';
import * as path from 'path';
import { confusionMatrixFigure, labelHistogramFigure, perClassBarsFigure, saveChartPng, trainingCurvesFigure } from '../src/plots';
import { copycatDirName, CopycatResult } from '../src/steps/copycatStep';
import { curveTestLabel, OracleResult } from '../src/steps/oracleStep';
import { loadStolenLabels } from '../src/stolenLabels';
import { readJson, readJsonLines } from '../src/run';
import { defencesFigure, queryBudgetFigure } from '../src/experiments/experimentFigures';
import type { BudgetPoint } from '../src/experiments/queryBudget';
import type { DefenceRow } from '../src/experiments/defences';
import { COPYCAT_SETS } from '../src/config';
import { CIFAR10_CLASSES } from '../src/types';

async function main(): Promise<void> {
  const [runArg, outArg] = process.argv.slice(2);
  if (!runArg) throw new Error('usage: scripts/readme-figures.ts <run-dir> [out-dir]');
  const run = path.resolve(runArg);
  const out = path.resolve(outArg ?? 'docs/figures');
  fs.mkdirSync(out, { recursive: true });
  const config = readJson<{ profile: string; data: { curveTestImages?: number | null; testImages: number | null } }>(path.join(run, 'config.json'), 'run config');
  const profile = config.profile;
  const curveName = curveTestLabel({ curveTestImages: null, ...config.data });
  const oracle = readJson<OracleResult>(path.join(run, 'oracle', 'result.json'), 'oracle result');
  const copies = COPYCAT_SETS.map((s) => path.join(run, 'copycats', copycatDirName(s), 'result.json'))
    .filter((f) => fs.existsSync(f)).map((f) => readJson<CopycatResult>(f, f));
  const npd = loadStolenLabels(path.join(run, 'stolen', 'NPD-SL.json'));
  const results = [
    await saveChartPng(labelHistogramFigure(npd.labels, CIFAR10_CLASSES, { title: `${profile} profile: stolen labels of ${npd.n} NPD images`, name: 'NPD-SL' }),
      path.join(out, `${profile}_npd_label_histogram.png`), { width: 800, height: 400 }),
    await saveChartPng(perClassBarsFigure([
      { name: 'Oracle', values: oracle.metrics.perClass.map((c) => c.f1) },
      ...copies.map((r) => ({ name: `Copycat ${r.set}`, values: r.metrics.perClass.map((c) => c.f1) })),
    ], CIFAR10_CLASSES, { title: `${profile} profile: F1 per class on the CIFAR-10 test set`, yTitle: 'F1' }),
    path.join(out, `${profile}_per_class_f1.png`), { width: 900, height: 420 }),
  ];
  results.push(await saveChartPng(trainingCurvesFigure(oracle.history, `${profile} profile: oracle ${oracle.architecture} training`, curveName),
    path.join(out, `${profile}_oracle_training.png`), { width: 900, height: 380 }));
  if (copies[0]) {
    results.push(await saveChartPng(confusionMatrixFigure(copies[0].metrics.confusion, CIFAR10_CLASSES, { title: `${profile} profile: Copycat ${copies[0].set} confusion (row-normalised)`, normalize: true }),
      path.join(out, `${profile}_copycat_npd_confusion.png`), { width: 640, height: 560 }));
  }
  // The 05/06 experiments, when they were run on this run directory.
  const budgetFile = path.join(run, 'experiments', 'query_budget', 'points.jsonl');
  if (fs.existsSync(budgetFile)) {
    const price = readJson<{ query: { pricePer1000: number } }>(path.join(run, 'config.json'), 'run config').query.pricePer1000;
    results.push(await saveChartPng(queryBudgetFigure(readJsonLines<BudgetPoint>(budgetFile), price), path.join(out, `${profile}_query_budget.png`), { width: 900, height: 450 }));
  }
  const defencesFile = path.join(run, 'experiments', 'defences', 'rows.jsonl');
  if (fs.existsSync(defencesFile)) {
    results.push(await saveChartPng(defencesFigure(readJsonLines<DefenceRow>(defencesFile)), path.join(out, `${profile}_defences.png`), { width: 900, height: 450 }));
  }
  for (const r of results) console.log(r.file ?? `skipped: ${r.skipped}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
