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

/**
 * n pseudo-random 32x32 RGB uint8 images with labels 0..9 in turn: speed benchmarks need inputs, not content.
 * bench/torch_nets.py makes the same pixels, so both sides of bench:vs-pytorch see the same data.
 */
export function syntheticSet(n: number): { images: Uint8Array; labels: Uint8Array; n: number; height: number; width: number } {
  const images = new Uint8Array(n * 32 * 32 * 3);
  for (let i = 0; i < images.length; i++) images[i] = (Math.imul(i, 2654435761) >>> 24) & 255;
  return { images, labels: Uint8Array.from({ length: n }, (_, i) => i % 10), n, height: 32, width: 32 };
}
