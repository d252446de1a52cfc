import * as fs from 'fs';
import { backendReport } from '../backend';
import { COPYCAT_SETS } from '../config';
import { CITED_ROWS, ResultRow, ResultsTable, writeResults } from '../report';
import { readJson, Run } from '../run';
import { CopycatResult, copycatDirName } from './copycatStep';
import { OracleResult } from './oracleStep';

/** Collects oracle/result.json and copycats/<set>/result.json into the paper-style table. */
export function collectResults(run: Run, extra: { wallSeconds?: number } = {}): ResultsTable {
  const oracle = readJson<OracleResult>(run.path('oracle', 'result.json'), 'oracle result');
  const rows: ResultRow[] = [{
    model: 'Oracle', architecture: oracle.architecture, trainData: `CIFAR-10 train (${oracle.trainImages}, true labels)`, queries: null,
    accuracy: oracle.metrics.accuracy, microAverage: oracle.metrics.microAverage, macroAverage: oracle.metrics.macroAverage,
    agreement: null, performanceOverTarget: null, testImages: oracle.testImages, wallSeconds: oracle.wallSeconds, computed: true,
  }];
  const describe: Record<string, string> = {
    'NPD-SL': 'NPD images, stolen labels', 'PD-SL': 'CIFAR-10 train images, stolen labels', 'NPD+PD-SL': 'NPD + CIFAR-10 train images, stolen labels',
  };
  for (const set of run.config.copycat.sets.filter((s) => COPYCAT_SETS.includes(s))) {
    const file = run.path('copycats', copycatDirName(set), 'result.json');
    if (!fs.existsSync(file)) continue;
    const r = readJson<CopycatResult>(file, `copycat ${set} result`);
    rows.push({
      model: `Copycat ${set}`, architecture: r.architecture, trainData: `${describe[set]} (${r.trainImages})`, queries: r.queries,
      accuracy: r.metrics.accuracy, microAverage: r.metrics.microAverage, macroAverage: r.metrics.macroAverage,
      agreement: r.agreement, performanceOverTarget: r.performanceOverTarget, testImages: oracle.testImages, wallSeconds: r.wallSeconds, computed: true,
    });
  }
  return {
    run: run.name, profile: run.config.profile, backend: oracle.backend ?? backendReport().label,
    createdAt: new Date().toISOString(), wallSeconds: extra.wallSeconds, rows, cited: CITED_ROWS,
  };
}

/** Writes results.md/.csv/.json into the run directory and returns the table. */
export function writeRunResults(run: Run, extra: { wallSeconds?: number } = {}): ResultsTable {
  const table = collectResults(run, extra);
  writeResults(run.dir, table);
  return table;
}
