/**
 * `npx ts-node --transpile-only scripts/readme-figures.ts <run-dir> [out-dir]`: PNG figures of a finished
 * run for the README (label histogram, per-class F1, oracle training curves, copycat confusion, and the
 * query-budget and defence experiments when the run has them), rendered
 * with Debian chromium.
 */
import * as fs from 'fs';
import * as path from 'path';
import {
  confusionMatrixFigure, defencesFigure, labelHistogramFigure, perClassBarsFigure, queryBudgetFigure, trainingCurvesFigure,
} from '../src/display/charts';
import { saveChartPng } from '../src/display/plotly';
import { readCopycatResult } from '../src/steps/copycatStep';
import { curveTestLabel } from '../src/steps/inputs';
import { readOracleResult } from '../src/steps/oracleStep';
import { readStolenLabels } from '../src/steps/stealStep';
import { readJsonLines, readRun } from '../src/run';
import type { BudgetPoint } from '../src/experiments/queryBudget';
import type { DefenceRow } from '../src/experiments/defences';
import { COPYCAT_SETS } from '../src/config';
import { CIFAR10_CLASSES } from '../src/types';

async function main(): Promise<void> {
  const [runArg, outArg] = process.argv.slice(2);
  if (!runArg) throw new Error('usage: scripts/readme-figures.ts <run-dir> [out-dir]');
  // The run's config as saved: the figures show the variants it was last opened with.
  const r = readRun(runArg);
  const run = r.dir;
  const out = path.resolve(outArg ?? 'docs/figures');
  fs.mkdirSync(out, { recursive: true });
  const profile = r.config.profile;
  const curveName = curveTestLabel(r.config.data);
  const oracle = readOracleResult(r);
  const copies = COPYCAT_SETS.map((s) => readCopycatResult(r, s)).filter((c): c is NonNullable<typeof c> => c !== undefined);
  const npd = readStolenLabels(r, 'NPD-SL');
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
    const price = r.config.query.pricePer1000;
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
