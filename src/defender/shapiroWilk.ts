/**
 * The Shapiro-Wilk W statistic (normality of a sample), with Royston's (1992, 1995: AS R94)
 * approximation of the coefficients, valid for 3 <= n <= 5000. PRADA (src/defender/prada.ts) flags a
 * query stream whose distances are not normal, and needs only W, not its p-value. Written here because
 * no maintained JavaScript package computes it (scipy.stats.shapiro is the reference; the tests compare
 * against its values).
 */

/** The standard normal quantile (Acklam's rational approximation, relative error < 1.15e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`normalQuantile: p must be in (0, 1), got ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

const poly = (cs: number[], x: number): number => cs.reduceRight((acc, c) => acc * x + c, 0);

/** W in (0, 1]; values well below 1 say "not normal". */
export function shapiroWilkW(sample: ArrayLike<number>): number {
  const n = sample.length;
  if (n < 3 || n > 5000) throw new Error(`shapiroWilkW: needs 3 to 5000 values, got ${n}`);
  const x = Float64Array.from(sample).sort();
  const range = x[n - 1] - x[0];
  if (!(range > 0)) throw new Error('shapiroWilkW: all values are equal');
  const a = new Float64Array(n);
  if (n === 3) {
    a[0] = -Math.SQRT1_2;
    a[2] = Math.SQRT1_2;
  } else {
    const m = Float64Array.from({ length: n }, (_, i) => normalQuantile((i + 1 - 0.375) / (n + 0.25)));
    const mm = m.reduce((s, v) => s + v * v, 0);
    const u = 1 / Math.sqrt(n);
    const an = poly([m[n - 1] / Math.sqrt(mm), 0.221157, -0.147981, -2.07119, 4.434685, -2.706056], u);
    if (n > 5) {
      const an1 = poly([m[n - 2] / Math.sqrt(mm), 0.042981, -0.293762, -1.752461, 5.682633, -3.582633], u);
      const phi = (mm - 2 * m[n - 1] ** 2 - 2 * m[n - 2] ** 2) / (1 - 2 * an ** 2 - 2 * an1 ** 2);
      for (let i = 2; i < n - 2; i++) a[i] = m[i] / Math.sqrt(phi);
      a[0] = -an; a[1] = -an1; a[n - 2] = an1; a[n - 1] = an;
    } else {
      const phi = (mm - 2 * m[n - 1] ** 2) / (1 - 2 * an ** 2);
      for (let i = 1; i < n - 1; i++) a[i] = m[i] / Math.sqrt(phi);
      a[0] = -an; a[n - 1] = an;
    }
  }
  const mean = x.reduce((s, v) => s + v, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += a[i] * x[i];
    den += (x[i] - mean) ** 2;
  }
  return Math.min(1, (num * num) / den);
}
