/**
 * An out-of-distribution watch on a key's queries, under the oracle itself: the share of its recent
 * queries that the oracle answers with a top probability below `threshold`. The Copycat attack asks
 * natural images from outside the task, which the oracle answers far less confidently than its own
 * domain; honest users of a CIFAR-10 classifier send CIFAR-10-like images. A stream whose low-confidence
 * share over the last `window` queries exceeds `maxRate` raises the alarm. It cannot see an attacker
 * who queries the problem domain itself (PD-SL): that traffic is what honest traffic looks like.
 */
export interface ConfidenceConfig {
  /** A query is "unsure" when the oracle's top probability is below this. */
  threshold: number;
  /** Queries the share is taken over. */
  window: number;
  /** Alarm when the unsure share of a full window exceeds this (calibrateMaxRate from honest traffic). */
  maxRate: number;
}

export const DEFAULT_CONFIDENCE: ConfidenceConfig = { threshold: 0.5, window: 200, maxRate: 0.25 };

export function resolveConfidence(c: Partial<ConfidenceConfig> = {}): ConfidenceConfig {
  const r = { ...DEFAULT_CONFIDENCE, ...c };
  if (!(r.threshold > 0 && r.threshold < 1)) throw new Error(`monitor.confidence.threshold must be in (0, 1), got ${r.threshold}`);
  if (!Number.isInteger(r.window) || r.window < 10) throw new Error(`monitor.confidence.window must be an integer >= 10, got ${r.window}`);
  if (!(r.maxRate > 0 && r.maxRate < 1)) throw new Error(`monitor.confidence.maxRate must be in (0, 1), got ${r.maxRate}`);
  return r;
}

/**
 * The alarm level for honest traffic whose unsure share is `honestRate`: that rate plus `z` binomial
 * standard deviations of a window's share, so one honest window in roughly a million (z = 5) crosses it.
 */
export function calibrateMaxRate(honestTopProbs: ArrayLike<number>, threshold: number, window: number, z = 5): { honestRate: number; maxRate: number } {
  if (honestTopProbs.length === 0) throw new Error('calibrateMaxRate: no honest queries to calibrate on');
  let unsure = 0;
  for (let i = 0; i < honestTopProbs.length; i++) if (honestTopProbs[i] < threshold) unsure++;
  const p = unsure / honestTopProbs.length;
  return { honestRate: p, maxRate: Math.min(0.99, p + z * Math.sqrt(Math.max(p * (1 - p), 1 / honestTopProbs.length) / window)) };
}

export interface ConfidenceVerdict {
  queries: number;
  /** Unsure share of the latest window (null before a full window). */
  rate: number | null;
  flaggedAt: number | null;
}

export class ConfidenceDetector {
  readonly cfg: ConfidenceConfig;
  private recent: Uint8Array;
  private at = 0;
  private unsure = 0;
  private verdict: ConfidenceVerdict = { queries: 0, rate: null, flaggedAt: null };

  constructor(cfg: Partial<ConfidenceConfig> = {}) {
    this.cfg = resolveConfidence(cfg);
    this.recent = new Uint8Array(this.cfg.window);
  }

  /** One query: the oracle's top probability for it. */
  observe(topProb: number): ConfidenceVerdict {
    const v = this.verdict;
    const slot = this.at++ % this.cfg.window;
    this.unsure -= this.recent[slot];
    this.recent[slot] = topProb < this.cfg.threshold ? 1 : 0;
    this.unsure += this.recent[slot];
    v.queries += 1;
    if (v.queries >= this.cfg.window) {
      v.rate = this.unsure / this.cfg.window;
      if (v.rate > this.cfg.maxRate && v.flaggedAt === null) v.flaggedAt = v.queries;
    }
    return { ...v };
  }

  get state(): ConfidenceVerdict {
    return { ...this.verdict };
  }
}
