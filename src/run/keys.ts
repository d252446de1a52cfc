import * as crypto from 'crypto';
import { canonicalJson } from '../canonicalJson';

/**
 * Step keys, as in a build system: a step's result is stored under the hash of exactly what it depends
 * on (the config values it reads, the keys of the steps it reads from, the arithmetic), so a changed
 * setting gives a new folder and an unchanged one finds its finished result.
 */

export { canonicalJson };

/** Hex length of a key: 12 hex digits make a collision among a run's few hundred variants negligible. */
export const KEY_LENGTH = 12;

export function keyOf(inputs: unknown): string {
  return crypto.createHash('sha256').update(canonicalJson(inputs)).digest('hex').slice(0, KEY_LENGTH);
}

/** Leaf values of a JSON object by dotted path ('copycat.train.epochs'); arrays are leaves. */
export function flattenSettings(value: unknown, prefix = ''): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return prefix ? { [prefix]: value } : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined) continue;
    Object.assign(out, flattenSettings(v, prefix ? `${prefix}.${k}` : k));
  }
  return out;
}

export interface SettingChange {
  path: string;
  before: unknown;
  after: unknown;
}

/** What differs between two settings objects, leaf by leaf (a missing leaf reads as undefined). */
export function settingChanges(before: unknown, after: unknown): SettingChange[] {
  const a = flattenSettings(before);
  const b = flattenSettings(after);
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths.filter((p) => canonicalJson(a[p]) !== canonicalJson(b[p])).map((p) => ({ path: p, before: a[p], after: b[p] }));
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v));

/** 'train.epochs 2 → 4, seed 1 → 2' (at most `max` changes, then '+N more'). */
export function formatChanges(changes: SettingChange[], max = 4): string {
  const head = changes.slice(0, max).map((c) => `${c.path} ${show(c.before)} → ${show(c.after)}`);
  return changes.length > max ? `${head.join(', ')}, +${changes.length - max} more` : head.join(', ');
}
