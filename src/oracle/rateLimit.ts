/**
 * Token bucket in images: `perMinute` images per minute on average, bursts up to `burst` images.
 * Used by the server (per API key, like Azure's 20 images/minute free tier) and by the client (to stay
 * under a known limit instead of collecting 429s).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  readonly perSecond: number;

  constructor(
    readonly perMinute: number,
    readonly burst: number = perMinute,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(perMinute > 0)) throw new Error(`rate limit must be > 0 images/minute, got ${perMinute}`);
    if (!(burst >= 1)) throw new Error(`rate limit burst must be >= 1 image, got ${burst}`);
    this.perSecond = perMinute / 60;
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
  }

  /** Takes n tokens if available and returns 0, else takes nothing and returns the seconds to wait. */
  take(n: number): number {
    this.refill();
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    return (n - this.tokens) / this.perSecond;
  }

  /** Waits until n tokens are there, then takes them (client side). n above burst waits for a full bucket. */
  async acquire(n: number, signal?: AbortSignal): Promise<void> {
    const need = Math.min(n, this.burst);
    for (;;) {
      const wait = this.take(need);
      if (wait === 0) return;
      await sleep(wait * 1000, signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
