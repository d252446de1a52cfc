import { PradaConfig, PradaDetector, pradaFeatures, type PradaVerdict } from './prada';

/**
 * The server's watch on one API key's query stream (startOracleServer's `monitor` option): every image
 * it answers goes through PRADA with the label it answered. Off unless the server is started with it.
 */
export interface MonitorOptions {
  prada?: Partial<PradaConfig>;
  /** 'log' (default): log and count the alarm; 'refuse': also answer the key's later requests with 403. */
  action?: 'log' | 'refuse';
}

export interface MonitorStats extends PradaVerdict {
  method: 'prada';
  /** Time spent watching this key, for the monitor's cost per request. */
  seconds: number;
}

export class KeyMonitor {
  private readonly detector: PradaDetector;
  private seconds = 0;

  constructor(readonly options: MonitorOptions) {
    if (options.action !== undefined && options.action !== 'log' && options.action !== 'refuse') {
      throw new Error(`monitor.action must be 'log' or 'refuse', got ${JSON.stringify(options.action)}`);
    }
    this.detector = new PradaDetector(options.prada);
  }

  get flagged(): boolean {
    return this.detector.state.flaggedAt !== null;
  }

  /** The images of one answered request (RGB, n x h x w x 3) and their labels; true when this request raised the alarm. */
  observe(pixels: Uint8Array, n: number, height: number, width: number, labels: ArrayLike<number>): boolean {
    const t0 = process.hrtime.bigint();
    const was = this.flagged;
    const px = height * width * 3;
    for (let i = 0; i < n; i++) {
      this.detector.observe(pradaFeatures(pixels.subarray(i * px, (i + 1) * px), height, width, this.detector.cfg.side), labels[i]);
    }
    this.seconds += Number(process.hrtime.bigint() - t0) / 1e9;
    return !was && this.flagged;
  }

  stats(): MonitorStats {
    return { method: 'prada', ...this.detector.state, seconds: this.seconds };
  }
}
