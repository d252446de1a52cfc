import * as fs from 'fs';
import { FPMATH_MODES } from '../platform/backend';
import { formatChanges, readJson, Run, StepKind } from '../run';
import type { Metrics } from '../metrics';
import { formatDecimal, formatPercent } from '../report';
import { copycatVariant, defaultSettings, listVariants, oracleVariant, StepRecord, stolenPartsOf, stolenVariant, variantChanges } from './variants';

/**
 * The variants a run holds, side by side (`npm run runs`, notebook 04): what each changed against its
 * profile's defaults and how it scored. And the prune that removes what the run's config no longer uses.
 */

export interface VariantRow {
  step: StepKind;
  name: string;
  key: string;
  /** Whether the run's current config (config.json) uses this variant. */
  current: boolean;
  finished: boolean;
  /** Settings that differ from the profile's defaults ('' = the defaults; upstream keys not counted). */
  changes: string;
  accuracy?: number;
  macroF1?: number;
  agreement?: number;
  performanceOverTarget?: number;
  /** Copycats: agreement with the oracle on the pool's held-out NPD images. */
  unseenNpdAgreement?: number;
  /** Stolen sets: distinct images asked. */
  queries?: number;
  wallSeconds?: number;
  createdAt: string;
  /** Why a variant from before step keys is not reused, or that it was adopted. */
  note?: string;
  dir: string;
}

interface AnyResult {
  metrics?: Metrics;
  agreement?: number;
  unseenNpd?: { agreement: number };
  performanceOverTarget?: number;
  queries?: number;
  wallSeconds?: number;
}

/** Keys the run's current config uses, in either arithmetic (a prune must not guess which one ran). */
export function currentKeys(run: Run): Set<string> {
  const keys = new Set<string>();
  for (const arithmetic of FPMATH_MODES) {
    keys.add(oracleVariant(run, arithmetic, true).key);
    for (const set of run.config.copycat.sets) {
      keys.add(copycatVariant(run, set, arithmetic, true).key);
      for (const part of stolenPartsOf(set)) keys.add(stolenVariant(run, part, arithmetic).key);
    }
    for (const part of ['NPD-SL', 'PD-SL'] as const) keys.add(stolenVariant(run, part, arithmetic).key);
  }
  return keys;
}

function changesFromDefaults(r: StepRecord): string {
  if (r.settings === null) return '';
  const base = defaultSettings(r);
  if (base === undefined) return '';
  const changes = variantChanges({ settings: base, upstream: {}, arithmetic: 'strict' }, { settings: r.settings, upstream: {}, arithmetic: r.arithmetic });
  return formatChanges(changes, 12);
}

export function variantRows(run: Run): VariantRow[] {
  const current = currentKeys(run);
  return listVariants(run).map((r) => {
    const res = r.finished ? readJson<AnyResult>(`${r.dir}/result.json`, `${r.step} ${r.name} result`) : {};
    return {
      step: r.step, name: r.name, key: r.key, current: current.has(r.key), finished: r.finished,
      changes: changesFromDefaults(r),
      accuracy: res.metrics?.accuracy, macroF1: res.metrics?.macroAverage, agreement: res.agreement,
      performanceOverTarget: res.performanceOverTarget, unseenNpdAgreement: res.unseenNpd?.agreement, queries: r.step === 'stolen' ? res.queries : undefined,
      wallSeconds: res.wallSeconds, createdAt: r.createdAt, note: r.adopted, dir: r.dir,
    };
  });
}

/** The rows as a table for showTable / the terminal (one line per variant, the current ones marked *). */
export function formatVariantRows(rows: VariantRow[]): Record<string, string>[] {
  return rows.map((r) => ({
    step: `${r.current ? '*' : ' '} ${r.step === 'oracle' ? 'oracle' : `${r.step} ${r.name}`}`,
    key: r.key,
    'vs profile defaults': r.note?.startsWith('not reused') ? r.note : r.changes || '(defaults)',
    accuracy: formatPercent(r.accuracy),
    'macro F1': formatDecimal(r.macroF1),
    agreement: formatPercent(r.agreement),
    '% of target': formatPercent(r.performanceOverTarget),
    'unseen NPD': formatPercent(r.unseenNpdAgreement),
    queries: r.queries === undefined ? '' : String(r.queries),
    'wall time': r.wallSeconds === undefined ? (r.finished ? '' : 'unfinished') : `${(r.wallSeconds / 60).toFixed(1)} min`,
  }));
}

/**
 * Removes the variants the run's current config does not use, except those in `keep` (keys). With
 * `dryRun` it only says what it would remove. Query caches stay: they hold paid answers.
 */
export function pruneVariants(run: Run, opts: { keep?: string[]; dryRun?: boolean; log?: (s: string) => void } = {}): VariantRow[] {
  const keep = new Set(opts.keep ?? []);
  const doomed = variantRows(run).filter((r) => !r.current && !keep.has(r.key));
  for (const r of doomed) {
    opts.log?.(`${opts.dryRun ? 'would remove' : 'removed'} ${r.step} ${r.name} ${r.key} (${r.dir})`);
    if (!opts.dryRun) fs.rmSync(r.dir, { recursive: true, force: true });
  }
  return doomed;
}
