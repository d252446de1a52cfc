/** Small helpers shared by the bench scripts (flag parsing and the summary statistic they report). */

/** A command-line value that must be a positive integer; the error names the flag. */
export function positiveInt(v: string | undefined, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** Median of repeated timings: one slow minute on a shared VM does not move it. */
export function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
