import { backendReport } from '../platform/backend';
import { COPYCAT_SETS } from '../config';
import { CITED_ROWS, ResultRow, ResultsTable, writeResults } from '../report';
import type { Run } from '../run';
import { readCopycatResult } from './copycatStep';
import { readOracleResult } from './oracleStep';

/** Collects the results of the run config's oracle and copycat variants into the paper-style table. */
export function collectResults(run: Run, extra: { wallSeconds?: number } = {}): ResultsTable {
  const oracle = readOracleResult(run);
  const rows: ResultRow[] = [{
    model: 'Oracle', architecture: oracle.architecture, trainData: `CIFAR-10 train (${oracle.trainImages}, true labels)`, queries: null,
    accuracy: oracle.metrics.accuracy, microAverage: oracle.metrics.microAverage, macroAverage: oracle.metrics.macroAverage,
    agreement: null, performanceOverTarget: null, testImages: oracle.testImages, wallSeconds: oracle.wallSeconds, computed: true,
  }];
  const describe: Record<string, string> = {
    'NPD-SL': 'NPD images, stolen labels', 'PD-SL': 'CIFAR-10 train images, stolen labels', 'NPD+PD-SL': 'NPD + CIFAR-10 train images, stolen labels',
  };
  for (const set of run.config.copycat.sets.filter((s) => COPYCAT_SETS.includes(s))) {
    const r = readCopycatResult(run, set);
    if (!r) continue;
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
