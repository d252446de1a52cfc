import * as crypto from 'crypto';
import type { ImageSet } from '../types';
import { normalizeAnswerSpec, validateAnswer } from './answers';
import { QueryBudgetExceeded, QueryMeter } from './budget';
import { encodePng } from './decode';
import { sleep, TokenBucket } from './rateLimit';
import type { AnswerSpec, Oracle, OracleAnswer, OracleInfo, OracleStats } from './types';

/**
 * The attacker's side of docs/oracle-api.md: any server that speaks that format (ours or someone
 * else's) becomes an Oracle. What matters for a paid API: answers are counted only when they arrive,
 * retries carry the same Idempotency-Key so a server that already charged can replay instead of
 * charging again, 429s are waited out, and transient failures are retried with backoff.
 */

export interface HttpOracleOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 (the server's /v1/... routes are appended). */
  url: string;
  apiKey: string;
  /** Requests in flight at once; default 4. */
  concurrency?: number;
  /** Images per batch request; default 64, lowered to the server's maxImagesPerRequest and on 413 too_many_images. */
  imagesPerRequest?: number;
  /** Client-side limit in images/minute (stay under a known rate limit instead of collecting 429s). */
  ratePerMinute?: number;
  /** Client-side burst; default ratePerMinute. */
  burst?: number;
  /** Retries of transient failures (5xx, connection errors, timeouts) per request; default 6. */
  maxRetries?: number;
  /** 429 rate_limited answers waited out per request before giving up; default 100. */
  maxThrottleWaits?: number;
  /** First backoff in ms (doubles per retry, randomised between 50% and 100%); default 250. */
  backoffMs?: number;
  /** Backoff ceiling in ms; default 30000. */
  maxBackoffMs?: number;
  /** Per-request timeout in ms; default 30000. */
  timeoutMs?: number;
  /** Client-side budget in images; beyond it query() throws QueryBudgetExceeded without asking. */
  budget?: number;
  /** US$ per 1000 images; default: what /v1/health advertises, else 1. */
  pricePer1000?: number;
  /** Expected answer mode; connect() fails if the server answers in another one. */
  answer?: AnswerSpec | string;
  /** Cancels waits and requests in flight. */
  signal?: AbortSignal;
  /** Jitter source in [0,1); default Math.random. */
  random?: () => number;
}

/** What /v1/health returns (docs/oracle-api.md). */
export interface OracleHealth {
  status: string;
  name?: string;
  mode: AnswerSpec;
  numClasses: number;
  classNames?: string[];
  input: { height: number; width: number };
  maxImagesPerRequest?: number;
  maxBodyBytes?: number;
  pricePer1000?: number;
}

/** Answers that arrived (and were paid) before query() failed, index-aligned with the batch. */
export function partialAnswersOf(err: unknown): (OracleAnswer | undefined)[] | undefined {
  return (err as { partialAnswers?: (OracleAnswer | undefined)[] } | null)?.partialAnswers;
}

/** A failure that retrying will not fix (4xx other than 429, too many 429s). */
export class HttpOracleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpOracleError';
  }
}

interface ErrorBody {
  code?: string;
  message?: string;
  maxImages?: number;
  quota?: number;
  used?: number;
}

function retryAfterSeconds(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s;
  const d = Date.parse(h);
  return Number.isFinite(d) ? Math.max(0, (d - Date.now()) / 1000) : undefined;
}

export class HttpOracle implements Oracle {
  readonly info: OracleInfo;
  private readonly meter: QueryMeter;
  private readonly bucket?: TokenBucket;
  private readonly base: string;
  private perRequest: number;
  private readonly random: () => number;

  constructor(
    private readonly opts: HttpOracleOptions,
    health: OracleHealth,
  ) {
    this.base = opts.url.replace(/\/+$/, '');
    this.meter = new QueryMeter({ budget: opts.budget, pricePer1000: opts.pricePer1000 ?? health.pricePer1000 });
    this.bucket = opts.ratePerMinute !== undefined ? new TokenBucket(opts.ratePerMinute, opts.burst ?? opts.ratePerMinute) : undefined;
    this.perRequest = Math.max(1, Math.min(opts.imagesPerRequest ?? 64, health.maxImagesPerRequest ?? Infinity));
    this.random = opts.random ?? Math.random;
    this.info = {
      name: health.name ?? this.base,
      kind: 'http',
      answer: normalizeAnswerSpec(health.mode),
      numClasses: health.numClasses,
      classNames: health.classNames,
      input: health.input,
      pricePer1000: this.meter.pricePer1000,
      budget: opts.budget,
    };
  }

  /** Reads GET /v1/health (mode, classes, input size, limits) and returns a ready client. */
  static async connect(opts: HttpOracleOptions): Promise<HttpOracle> {
    const url = `${opts.url.replace(/\/+$/, '')}/v1/health`;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
    } catch (e) {
      throw new Error(`HttpOracle.connect: cannot reach ${url} (${(e as Error).message}${(e as { cause?: Error }).cause ? `: ${(e as { cause: Error }).cause.message}` : ''})`);
    }
    const text = await res.text();
    if (!res.ok) throw new Error(`HttpOracle.connect: ${url} answered ${res.status}: ${text.slice(0, 200)}`);
    let h: OracleHealth;
    try {
      h = JSON.parse(text) as OracleHealth;
    } catch {
      throw new Error(`HttpOracle.connect: ${url} did not return JSON: ${text.slice(0, 200)}`);
    }
    if (!h || typeof h.numClasses !== 'number' || !h.input || !(h.input.height > 0) || !(h.input.width > 0) || !h.mode) {
      throw new Error(`HttpOracle.connect: ${url} lacks numClasses, input {height,width} or mode (see docs/oracle-api.md): ${text.slice(0, 200)}`);
    }
    const mode = normalizeAnswerSpec(h.mode);
    if (opts.answer !== undefined) {
      const want = normalizeAnswerSpec(opts.answer);
      if (JSON.stringify(want) !== JSON.stringify(mode)) {
        throw new Error(`HttpOracle.connect: server answers in mode ${JSON.stringify(mode)}, expected ${JSON.stringify(want)}`);
      }
    }
    return new HttpOracle(opts, { ...h, mode });
  }

  stats(): OracleStats {
    return this.meter.stats();
  }

  async query(batch: ImageSet): Promise<OracleAnswer[]> {
    const px = batch.height * batch.width * 3;
    if (batch.images.length !== batch.n * px) {
      throw new Error(`HttpOracle.query: images has ${batch.images.length} bytes, expected n*h*w*3 = ${batch.n * px}`);
    }
    if (batch.n === 0) return [];
    this.meter.reserve(batch.n);
    const results: (OracleAnswer | undefined)[] = new Array(batch.n);
    let unsettled = batch.n;
    const chunks: [number, number][] = [];
    for (let s = 0; s < batch.n; s += this.perRequest) chunks.push([s, Math.min(this.perRequest, batch.n - s)]);
    let failure: unknown;
    const worker = async (): Promise<void> => {
      while (failure === undefined && chunks.length > 0) {
        const [start, count] = chunks.shift()!;
        try {
          await this.runChunk(batch, start, count, results, (k) => {
            this.meter.settle(k, k);
            unsettled -= k;
          });
        } catch (e) {
          failure ??= e;
        }
      }
    };
    const c = Math.max(1, this.opts.concurrency ?? 4);
    await Promise.all(Array.from({ length: Math.min(c, chunks.length) }, worker));
    this.meter.settle(unsettled, 0);
    if (failure !== undefined) {
      if (results.some((a) => a !== undefined) && typeof failure === 'object' && failure !== null) {
        (failure as { partialAnswers?: unknown }).partialAnswers = results;
      }
      throw failure;
    }
    return results as OracleAnswer[];
  }

  /** One batch request with retries; splits itself when the server says it is too big. */
  private async runChunk(
    batch: ImageSet,
    start: number,
    count: number,
    results: (OracleAnswer | undefined)[],
    paid: (k: number) => void,
  ): Promise<void> {
    const { signal } = this.opts;
    const pngs = await Promise.all(Array.from({ length: count }, (_, i) => encodePng(batch.images, start + i, batch.height, batch.width)));
    const body = JSON.stringify({ images: pngs.map((b) => b.toString('base64')) });
    const idempotencyKey = crypto.randomUUID();
    const maxRetries = this.opts.maxRetries ?? 6;
    const maxWaits = this.opts.maxThrottleWaits ?? 100;
    let retries = 0;
    let waits = 0;
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      if (this.bucket) await this.bucket.acquire(count, signal);
      let transient: string;
      try {
        const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 30_000);
        const res = await fetch(`${this.base}/v1/classify/batch`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-API-Key': this.opts.apiKey, 'Idempotency-Key': idempotencyKey },
          body,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        const text = await res.text();
        let json: { answers?: unknown; error?: ErrorBody } | undefined;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const err = json?.error ?? {};
        const what = `POST ${this.base}/v1/classify/batch answered ${res.status}${err.code ? ` ${err.code}` : ''}: ${err.message ?? text.slice(0, 200)}`;
        if (res.status === 200) {
          const answers = json?.answers;
          if (!Array.isArray(answers) || answers.length !== count) {
            // Possibly a proxy mangled the body; the Idempotency-Key lets the server replay without charging.
            transient = `${what} (expected 'answers' with ${count} entries)`;
          } else {
            const checked = answers.map((a, i) => validateAnswer(a, this.info.answer, this.info.numClasses, `answer ${i} from ${this.base}`));
            checked.forEach((a, i) => (results[start + i] = a));
            paid(count);
            return;
          }
        } else if (res.status === 429 && err.code === 'quota_exceeded') {
          throw new QueryBudgetExceeded(err.used ?? -1, err.quota ?? -1, count, `server quota for this API key (${err.message ?? ''})`);
        } else if (res.status === 429) {
          this.meter.throttled += 1;
          if (++waits > maxWaits) throw new HttpOracleError(`${what}; gave up after ${maxWaits} waits`);
          const s = retryAfterSeconds(res.headers.get('retry-after')) ?? this.backoff(waits) / 1000;
          // A little jitter so concurrent workers do not all come back in the same millisecond.
          await sleep(s * 1000 + this.random() * 100, signal);
          continue;
        } else if (res.status === 413 && typeof err.maxImages === 'number' && err.maxImages >= 1 && err.maxImages < count) {
          this.perRequest = Math.min(this.perRequest, err.maxImages);
          for (let s = start; s < start + count; s += err.maxImages) {
            await this.runChunk(batch, s, Math.min(err.maxImages, start + count - s), results, paid);
          }
          return;
        } else if (res.status >= 500) {
          transient = what;
        } else {
          throw new HttpOracleError(what);
        }
      } catch (e) {
        if (e instanceof HttpOracleError || e instanceof QueryBudgetExceeded) throw e;
        if (signal?.aborted) throw signal.reason ?? e;
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        transient = `${(e as Error).name === 'TimeoutError' ? `timeout after ${this.opts.timeoutMs ?? 30_000} ms` : (e as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
      }
      this.meter.failedAttempts += 1;
      if (++retries > maxRetries) throw new Error(`HttpOracle: giving up after ${maxRetries} retries: ${transient}`);
      await sleep(this.backoff(retries), signal);
    }
  }

  /** Exponential backoff with jitter (half fixed, half random) so concurrent clients spread out. */
  private backoff(attempt: number): number {
    const cap = Math.min(this.opts.maxBackoffMs ?? 30_000, (this.opts.backoffMs ?? 250) * 2 ** (attempt - 1));
    return cap * (0.5 + 0.5 * this.random());
  }
}
