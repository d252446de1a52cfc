import * as fs from 'fs';
import * as path from 'path';
import type { TableRow } from './display/notebook';
import { writeFileAtomic } from './io';
import { Metrics, perClassAgreement } from './metrics';

/** One row of the paper-style results table. Numbers are fractions (0..1) except `queries`. */
export interface ResultRow {
  model: string; // 'Oracle', 'Copycat NPD-SL', ...
  architecture: string;
  trainData: string; // e.g. 'CIFAR-10 train (50000, true labels)'
  queries: number | null; // oracle queries paid for this row's training set; null for the oracle
  accuracy: number;
  microAverage: number;
  macroAverage: number;
  agreement: number | null; // with the oracle on the test set
  performanceOverTarget: number | null; // copycat macro / oracle macro
  testImages: number;
  wallSeconds?: number;
  computed: true;
}

/** A number quoted from the literature, never computed here: kept apart so nobody mistakes it. */
export interface CitedRow {
  model: string;
  source: string;
  trainData: string;
  queries: number | null;
  accuracy: number | null;
  macroAverage: number | null;
  performanceOverTarget: number | null;
  computed: false;
}

/**
 * Reference rows quoted from the sources named in the project brief. Only the figures stated there are
 * given; blanks stay blank rather than being reconstructed.
 */
export const CITED_ROWS: CitedRow[] = [
  {
    model: 'Seed replication: Oracle', source: 'student replication (CIFAR-10)', trainData: 'CIFAR-10 train',
    queries: null, accuracy: 0.8297, macroAverage: 0.8306, performanceOverTarget: null, computed: false,
  },
  {
    model: 'Seed replication: Copycat NPD-SL', source: 'student replication (CIFAR-10)', trainData: '~80k MS COCO images, stolen labels',
    queries: 80000, accuracy: 0.3739, macroAverage: 0.3324, performanceOverTarget: 0.40, computed: false,
  },
  {
    model: 'Paper: Copycat NPD-SL (100k)', source: 'Correia-Silva et al. (pretrained VGG-16, 224 px)', trainData: '100k NPD images, stolen labels',
    queries: 100000, accuracy: null, macroAverage: null, performanceOverTarget: 0.926, computed: false,
  },
  {
    model: 'Paper: Copycat NPD-SL (500k)', source: 'Correia-Silva et al. (pretrained VGG-16, 224 px)', trainData: '500k NPD images, stolen labels',
    queries: 500000, accuracy: null, macroAverage: null, performanceOverTarget: 0.965, computed: false,
  },
];

export interface ResultsTable {
  run: string;
  profile: string;
  backend: string;
  createdAt: string;
  wallSeconds?: number;
  /** Wall time of each stage (notebook) of a headless reproduction, in order; written by `npm run reproduce`. */
  stages?: { name: string; seconds: number }[];
  rows: ResultRow[];
  cited: CitedRow[];
}

/** A fraction as '86.36 %' ('' for none); the one percent format of tables and the runs list. */
export const formatPercent = (x: number | null | undefined): string => (x == null ? '' : `${(100 * x).toFixed(2)} %`);
/** A score such as macro F1 as '0.8640' ('' for none). */
export const formatDecimal = (x: number | null | undefined): string => (x == null ? '' : x.toFixed(4));

/** The table as GitHub markdown: computed rows first, then the cited ones under their own heading. */
export function resultsMarkdown(t: ResultsTable): string {
  const head = '| Model | Architecture | Train data | #Queries | Accuracy | Micro avg | Macro avg | Agreement | Perf. over target |';
  const sep = '|---|---|---|---:|---:|---:|---:|---:|---:|';
  const lines = [
    `# Results: run \`${t.run}\` (profile \`${t.profile}\`)`,
    '',
    `Backend: ${t.backend}. Created ${t.createdAt}${t.wallSeconds != null ? `; wall time ${(t.wallSeconds / 60).toFixed(1)} min` : ''}.`,
    `Test set: CIFAR-10 test (${t.rows[0]?.testImages ?? 0} images).`,
    ...(t.stages?.length ? [`Stages: ${t.stages.map((s) => `${s.name} ${(s.seconds / 60).toFixed(1)} min`).join(', ')}.`] : []),
    '',
    head,
    sep,
    ...t.rows.map((r) =>
      `| ${r.model} | ${r.architecture} | ${r.trainData} | ${r.queries ?? '-'} | ${formatPercent(r.accuracy)} | ${formatDecimal(r.microAverage)} | ${formatDecimal(r.macroAverage)} | ${r.agreement == null ? '-' : formatPercent(r.agreement)} | ${r.performanceOverTarget == null ? '-' : formatPercent(r.performanceOverTarget)} |`),
    '',
    '## Cited for comparison (NOT computed here)',
    '',
    '| Model | Source | Train data | #Queries | Accuracy | Macro avg | Perf. over target |',
    '|---|---|---|---:|---:|---:|---:|',
    ...t.cited.map((r) =>
      `| ${r.model} | ${r.source} | ${r.trainData} | ${r.queries ?? '-'} | ${r.accuracy == null ? '-' : formatPercent(r.accuracy)} | ${r.macroAverage == null ? '-' : formatDecimal(r.macroAverage)} | ${r.performanceOverTarget == null ? '-' : formatPercent(r.performanceOverTarget)} |`),
    '',
  ];
  return lines.join('\n');
}

function csvCell(v: unknown): string {
  const s = v == null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with one row per computed and cited entry; `computed` tells them apart. */
export function resultsCsv(t: ResultsTable): string {
  const cols = ['model', 'architecture', 'trainData', 'queries', 'accuracy', 'microAverage', 'macroAverage', 'agreement', 'performanceOverTarget', 'testImages', 'computed', 'source'] as const;
  const rows = [...t.rows, ...t.cited] as unknown as Record<string, unknown>[];
  return [cols.join(','), ...rows.map((r) => cols.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
}

/** Writes results.md, results.csv and results.json into `dir` (atomically, file by file). */
export function writeResults(dir: string, t: ResultsTable): { md: string; csv: string; json: string } {
  fs.mkdirSync(dir, { recursive: true });
  const out = { md: path.join(dir, 'results.md'), csv: path.join(dir, 'results.csv'), json: path.join(dir, 'results.json') };
  writeFileAtomic(out.md, resultsMarkdown(t));
  writeFileAtomic(out.csv, resultsCsv(t));
  writeFileAtomic(out.json, JSON.stringify(t, null, 2) + '\n');
  return out;
}

// Table rows the notebooks show (showTable), so no notebook formats numbers by hand.


/** One row per copycat: images, queries, accuracy, macro F1, agreement, % of target, minutes. */
export function copycatRows(results: { set: string; trainImages: number; queries: number; metrics: Metrics; agreement: number; performanceOverTarget: number; wallSeconds: number; unseenNpd?: { agreement: number } }[]): TableRow[] {
  return results.map((r) => ({
    copycat: r.set, images: r.trainImages, queries: r.queries, accuracy: formatPercent(r.metrics.accuracy), 'macro F1': formatDecimal(r.metrics.macroAverage),
    agreement: formatPercent(r.agreement), 'perf. over target': formatPercent(r.performanceOverTarget),
    // Copies made before the unqueried pool have no such score: the column stays empty for them.
    'unseen NPD agreement': formatPercent(r.unseenNpd?.agreement), minutes: (r.wallSeconds / 60).toFixed(1),
  }));
}

/** One row per stolen set: images, queries, cost and how unevenly the oracle's answers fall on its classes. */
export function stolenSetRows(sets: Record<string, { n: number; queries: number; costUsd: number; histogram: { maxOverMin: number } }>): TableRow[] {
  return Object.entries(sets).map(([name, s]) => ({
    set: name, images: s.n, queries: s.queries, 'cost (US$)': s.costUsd.toFixed(2), 'most/least frequent class': s.histogram.maxOverMin.toFixed(1),
  }));
}

/** Per class: the share of the oracle's answers of that class that each copycat gives too (perClassAgreement). */
export function perClassAgreementRows(oraclePreds: ArrayLike<number>, copies: { set: string; testPredictions: ArrayLike<number> }[], classNames: readonly string[]): TableRow[] {
  const shares = copies.map((c) => perClassAgreement(oraclePreds, c.testPredictions, classNames.length));
  return classNames.map((name, k) => {
    const row: TableRow = { class: name };
    copies.forEach((c, i) => (row[c.set] = shares[i][k] === null ? '-' : `${(100 * shares[i][k]!).toFixed(1)} %`));
    return row;
  });
}

/** 05's table: one row per point of the query-budget curve (experiments/budgetMethods.ts). */
export function budgetPointRows(points: {
  budget: number; method: string; selection: string; queries: number; costUsd: number; epochs: number; accuracy: number; macroAverage: number;
  agreement: number; performanceOverTarget: number; unseenNpdAgreement: number | null; poolImages: number; wallSeconds: number;
}[]): TableRow[] {
  return points.map((p) => ({
    budget: p.budget, method: p.method === 'active' || p.method === 'both' ? `${p.method} (${p.selection})` : p.method,
    'paid queries': p.queries, 'cost (US$)': p.costUsd.toFixed(2), epochs: p.epochs, 'pool images': p.poolImages,
    accuracy: formatPercent(p.accuracy), 'macro F1': formatDecimal(p.macroAverage), agreement: formatPercent(p.agreement),
    'perf. over target': formatPercent(p.performanceOverTarget), 'unseen NPD agreement': formatPercent(p.unseenNpdAgreement),
    'train min': (p.wallSeconds / 60).toFixed(1),
  }));
}

/** 07's detection table: one row per stream and detector. */
export function detectionRows(rows: { stream: string; kind: string; detector: string; keys: number; queries: number; flaggedAt: number | null; keysFlagged: number; finalW: number | null; finalRate?: number | null; msPerQuery: number }[]): TableRow[] {
  return rows.map((r) => ({
    stream: r.stream, detector: r.detector, queries: r.queries,
    alarm: r.flaggedAt === null ? 'none' : r.keys > 1 ? `${r.keysFlagged} of ${r.keys} keys (first at query ${r.flaggedAt})` : `at query ${r.flaggedAt}`,
    verdict: r.kind === 'attack' ? (r.flaggedAt === null ? 'missed' : 'caught') : r.flaggedAt === null ? 'quiet' : 'FALSE ALARM',
    'final W': r.finalW === null ? '' : r.finalW.toFixed(3), 'final unsure share': r.finalRate == null ? '' : formatPercent(r.finalRate),
    'ms per query': r.msPerQuery.toFixed(3),
  }));
}

/** 07's verification table: each suspect's test accuracy and fingerprint scores at the most queries asked. */
export function verificationRows(models: { name: string; kind: string; accuracy: number; scores: Record<string, Record<string, number>> }[]): TableRow[] {
  return models.map((m) => {
    const row: TableRow = { model: m.name, kind: m.kind, 'test accuracy': formatPercent(m.accuracy) };
    for (const [f, byCount] of Object.entries(m.scores)) {
      const top = Object.keys(byCount).map(Number).sort((a, b) => b - a)[0];
      if (top !== undefined) row[`${f} (${top} queries)`] = formatPercent(byCount[String(top)]);
    }
    return row;
  });
}
