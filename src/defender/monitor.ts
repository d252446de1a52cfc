import { ConfidenceConfig, ConfidenceDetector, type ConfidenceVerdict } from './confidence';
import { PradaConfig, PradaDetector, pradaFeatures, type PradaVerdict } from './prada';

/**
 * The server's watch on one API key's query stream (startOracleServer's `monitor` option): every image
 * it answers goes through the detectors switched on, PRADA (the label it answered) and/or the
 * confidence watch (the oracle's top probability). Off unless the server is started with it.
 */
export interface MonitorOptions {
  /** PRADA's settings; on unless null (the default detector). */
  prada?: Partial<PradaConfig> | null;
  /** The out-of-distribution watch (src/defender/confidence.ts); off unless given. Needs a LocalOracle. */
  confidence?: Partial<ConfidenceConfig> | null;
  /** 'log' (default): log and count the alarm; 'refuse': also answer the key's later requests with 403. */
  action?: 'log' | 'refuse';
}

export interface MonitorStats {
  queries: number;
  /** Query (1-based) at which the first detector fired; null: no alarm. */
  flaggedAt: number | null;
  flaggedBy: 'prada' | 'confidence' | null;
  prada?: PradaVerdict;
  confidence?: ConfidenceVerdict;
  /** Time spent watching this key, for the monitor's cost per request. */
  seconds: number;
}

export class KeyMonitor {
  private readonly prada?: PradaDetector;
  private readonly confidence?: ConfidenceDetector;
  private seconds = 0;
  private queries = 0;
  private first: { at: number; by: 'prada' | 'confidence' } | null = null;

  constructor(readonly options: MonitorOptions) {
    if (options.action !== undefined && options.action !== 'log' && options.action !== 'refuse') {
      throw new Error(`monitor.action must be 'log' or 'refuse', got ${JSON.stringify(options.action)}`);
    }
    if (options.prada !== null) this.prada = new PradaDetector(options.prada ?? {});
    if (options.confidence) this.confidence = new ConfidenceDetector(options.confidence);
    if (!this.prada && !this.confidence) throw new Error('monitor: switch on at least one detector (prada or confidence)');
  }

  get needsProbabilities(): boolean {
    return this.confidence !== undefined;
  }

  get flagged(): boolean {
    return this.first !== null;
  }

  /**
   * The images of one answered request (RGB, n x h x w x 3), their labels and, for the confidence watch,
   * the oracle's probabilities (n x k); true when this request raised the alarm.
   */
  observe(pixels: Uint8Array, n: number, height: number, width: number, labels: ArrayLike<number>, probs?: Float32Array): boolean {
    const t0 = process.hrtime.bigint();
    const was = this.flagged;
    const px = height * width * 3;
    if (this.confidence && !probs) throw new Error('monitor: the confidence watch needs the oracle\'s probabilities (serve a LocalOracle)');
    const k = probs ? probs.length / n : 0;
    for (let i = 0; i < n; i++) {
      this.queries++;
      if (this.prada) {
        const v = this.prada.observe(pradaFeatures(pixels.subarray(i * px, (i + 1) * px), height, width, this.prada.cfg.side), labels[i]);
        if (v.flaggedAt !== null && !this.first) this.first = { at: this.queries, by: 'prada' };
      }
      if (this.confidence && probs) {
        let top = 0;
        for (let c = 0; c < k; c++) top = Math.max(top, probs[i * k + c]);
        const v = this.confidence.observe(top);
        if (v.flaggedAt !== null && !this.first) this.first = { at: this.queries, by: 'confidence' };
      }
    }
    this.seconds += Number(process.hrtime.bigint() - t0) / 1e9;
    return !was && this.flagged;
  }

  stats(): MonitorStats {
    return {
      queries: this.queries, flaggedAt: this.first?.at ?? null, flaggedBy: this.first?.by ?? null,
      ...(this.prada ? { prada: this.prada.state } : {}), ...(this.confidence ? { confidence: this.confidence.state } : {}),
      seconds: this.seconds,
    };
  }
}
