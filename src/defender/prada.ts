import { shapiroWilkW } from './shapiroWilk';

/**
 * PRADA (Juuti, Szyller, Marchal and Asokan, "PRADA: Protecting against DNN Model Stealing Attacks",
 * EuroS&P 2019), per API key: for each query, the L2 distance to the nearest earlier query the model put
 * in the same class. Honest users' queries are natural and independent, and those distances fit a normal
 * distribution; an attacker's synthetic or perturbed queries sit at a few typical distances from each
 * other, and the Shapiro-Wilk W of the distances drops below delta.
 *
 * Following the paper's Algorithm 1: a query joins its class's "growing set" only when it is farther
 * from it than that class's threshold (mean minus standard deviation of the set's own distances), and
 * every query's minimum distance joins D; once D holds `minQueries` values, the stream is tested after
 * every query. Distances are on the image as the model sees it (RGB in [0, 1]), optionally area-averaged
 * down to `side` x `side` (a cheaper monitor; the paper used full inputs).
 */
export interface PradaConfig {
  /** W below this flags the stream (the paper tuned 0.87-0.96 per model; 0.9 by default). */
  delta: number;
  /** Minimum distances needed before the first test (the paper: 100). */
  minQueries: number;
  /** Test on at most the most recent this many distances (Shapiro-Wilk's approximation holds to 5000). */
  window: number;
  /** Side the images are averaged down to before distances (0 = full size). */
  side: number;
}

export const DEFAULT_PRADA: PradaConfig = { delta: 0.9, minQueries: 100, window: 5000, side: 0 };

export function resolvePrada(c: Partial<PradaConfig> = {}): PradaConfig {
  const p = { ...DEFAULT_PRADA, ...c };
  if (!(p.delta > 0 && p.delta < 1)) throw new Error(`monitor.prada.delta must be in (0, 1), got ${p.delta}`);
  if (!Number.isInteger(p.minQueries) || p.minQueries < 3) throw new Error(`monitor.prada.minQueries must be an integer >= 3, got ${p.minQueries}`);
  if (!Number.isInteger(p.window) || p.window < p.minQueries || p.window > 5000) throw new Error(`monitor.prada.window must be an integer from minQueries to 5000, got ${p.window}`);
  if (!Number.isInteger(p.side) || p.side < 0) throw new Error(`monitor.prada.side must be an integer >= 0 (0 = full size), got ${p.side}`);
  return p;
}

/** The image as the detector compares it: RGB in [0, 1], area-averaged to side x side when side > 0. */
export function pradaFeatures(rgb: Uint8Array, height: number, width: number, side: number): Float32Array {
  if (side <= 0 || (side >= height && side >= width)) return Float32Array.from(rgb, (v) => v / 255);
  const out = new Float32Array(side * side * 3);
  const count = new Float32Array(side * side);
  for (let y = 0; y < height; y++) {
    const oy = Math.min(side - 1, Math.floor((y * side) / height));
    for (let x = 0; x < width; x++) {
      const o = oy * side + Math.min(side - 1, Math.floor((x * side) / width));
      count[o]++;
      for (let c = 0; c < 3; c++) out[o * 3 + c] += rgb[(y * width + x) * 3 + c] / 255;
    }
  }
  for (let o = 0; o < count.length; o++) for (let c = 0; c < 3; c++) out[o * 3 + c] /= count[o];
  return out;
}

export interface PradaVerdict {
  /** Queries seen. */
  queries: number;
  /** W of the latest test (null before minQueries distances). */
  w: number | null;
  /** Set once, at the query that first gave W < delta (1-based); the stream stays flagged. */
  flaggedAt: number | null;
}

interface GrowingSet {
  rows: Float32Array[];
  dists: number[];
  threshold: number;
}

export class PradaDetector {
  readonly cfg: PradaConfig;
  private sets = new Map<number, GrowingSet>();
  private distances: number[] = [];
  private verdict: PradaVerdict = { queries: 0, w: null, flaggedAt: null };

  constructor(cfg: Partial<PradaConfig> = {}) {
    this.cfg = resolvePrada(cfg);
  }

  /** One query: the image (already through pradaFeatures) and the class the model answered. */
  observe(features: Float32Array, label: number): PradaVerdict {
    const v = this.verdict;
    v.queries += 1;
    const g = this.sets.get(label);
    if (!g) {
      this.sets.set(label, { rows: [features], dists: [], threshold: 0 });
      return { ...v };
    }
    let min = Infinity;
    for (const r of g.rows) {
      let d = 0;
      for (let i = 0; i < r.length; i++) {
        const e = r[i] - features[i];
        d += e * e;
        if (d >= min) break;
      }
      if (d < min) min = d;
    }
    min = Math.sqrt(min);
    this.distances.push(min);
    if (this.distances.length > this.cfg.window) this.distances.shift();
    if (g.dists.length > 0) {
      const mean = g.dists.reduce((s, x) => s + x, 0) / g.dists.length;
      const sd = Math.sqrt(g.dists.reduce((s, x) => s + (x - mean) ** 2, 0) / g.dists.length);
      g.threshold = Math.max(g.threshold, mean - sd);
    }
    if (min > g.threshold) {
      g.rows.push(features);
      g.dists.push(min);
    }
    if (this.distances.length >= this.cfg.minQueries) {
      const spread = Math.max(...this.distances) - Math.min(...this.distances);
      // Identical distances are as far from normal as a stream gets (e.g. one image sent over and over).
      v.w = spread > 0 ? shapiroWilkW(this.distances) : 0;
      if (v.w < this.cfg.delta && v.flaggedAt === null) v.flaggedAt = v.queries;
    }
    return { ...v };
  }

  get state(): PradaVerdict {
    return { ...this.verdict };
  }
}
