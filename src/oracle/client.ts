import type { ImageSet } from '../types';
import { normalizeAnswerSpec, validateAnswer } from './answers';
import { QueryBudgetExceeded, QueryMeter } from './budget';
import { encodePng } from './decode';
import { imageHashes, remoteIdentity, requestKey } from './identity';
import { sleep, TokenBucket } from './rateLimit';
import type { AnswerSpec, Oracle, OracleAnswer, OracleInfo, OracleStats, PlannedRequest, QueryOptions } from './types';

/**
 * The attacker's side of docs/oracle-api.md: any server that speaks that format (ours or someone
 * else's) becomes an Oracle. What matters for a paid API: answers are counted only when they arrive,
 * every request carries an Idempotency-Key derived from its images (the same in every process, on
 * every retry and in a rerun) so a server that already charged replays instead of charging again,
 * each response's answers reach the caller (onAnswers) before anything else happens, 429s are waited
 * out, and transient failures are retried with backoff.
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
  /** Per-request timeout in ms; default 30000. A retry after a timeout carries the same key. */
  timeoutMs?: number;
  /** Client-side budget in images (this object's lifetime); beyond it query() throws QueryBudgetExceeded without asking. */
  budget?: number;
  /** US$ per 1000 images; default: what /v1/health advertises, else 1. */
  pricePer1000?: number;
  /** Expected answer mode; connect() fails if the server answers in another one. */
  answer?: AnswerSpec | string;
  /**
   * Cancels waits and requests in flight at once (answers of cancelled requests are lost to this
   * process; a rerun's replay gets them back). To stop gracefully, pass QueryOptions.stop instead.
   */
  signal?: AbortSignal;
  /** Jitter source in [0,1); default Math.random. */
  random?: () => number;
}

/** What /v1/health returns (docs/oracle-api.md). */
export interface OracleHealth {
  status: string;
  name?: string;
  /** The served oracle's identity digest (weights and answer settings), when the server states one. */
  identity?: string;
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
  remaining?: number;
}

/** Retry-After in seconds: whole seconds or an HTTP date (RFC 9110); undefined when absent or garbage. */
export function retryAfterSeconds(h: string | null, now = Date.now()): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s;
  const d = Date.parse(h);
  return Number.isFinite(d) ? Math.max(0, (d - now) / 1000) : undefined;
}

/**
 * Exponential backoff for retry `attempt` (1, 2, ...): base * 2^(attempt-1) capped at maxMs, then
 * randomised between 50% and 100% so concurrent clients do not come back in lockstep.
 */
export function backoffDelay(attempt: number, baseMs = 250, maxMs = 30_000, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return cap * (0.5 + 0.5 * random());
}

/** The error query() rejects with after QueryOptions.stop: the answers that arrived are attached. */
function stoppedError(done: number, total: number): Error {
  const e = new Error(`HttpOracle.query stopped after ${done} of ${total} images (answers that arrived were delivered)`);
  e.name = 'AbortError';
  return e;
}

export class HttpOracle implements Oracle {
  readonly info: OracleInfo;
  private readonly meter: QueryMeter;
  private readonly bucket?: TokenBucket;
  private readonly base: string;
  /** The server's own limit (health), never exceeded. */
  private readonly serverMax: number;
  /** Images per request now: the option, lowered by 413 too_many_images. */
  private perRequest: number;
  private readonly random: () => number;
  /** Lowest usage.remaining seen (a quota never refills). */
  private quotaLeft?: number;

  constructor(
    private readonly opts: HttpOracleOptions,
    health: OracleHealth,
  ) {
    this.base = opts.url.replace(/\/+$/, '');
    this.meter = new QueryMeter({ budget: opts.budget, pricePer1000: opts.pricePer1000 ?? health.pricePer1000 });
    this.bucket = opts.ratePerMinute !== undefined ? new TokenBucket(opts.ratePerMinute, opts.burst ?? opts.ratePerMinute) : undefined;
    this.serverMax = Math.max(1, health.maxImagesPerRequest ?? Infinity);
    this.perRequest = Math.max(1, Math.min(opts.imagesPerRequest ?? 64, this.serverMax));
    this.random = opts.random ?? Math.random;
    const answer = normalizeAnswerSpec(health.mode);
    this.info = {
      name: health.name ?? this.base,
      identity: health.identity ?? remoteIdentity(this.base, { answer, numClasses: health.numClasses, input: health.input }),
      kind: 'http',
      answer,
      numClasses: health.numClasses,
      classNames: health.classNames,
      input: health.input,
      pricePer1000: this.meter.pricePer1000,
      budget: opts.budget,
    };
  }

  /**
   * Reads GET /v1/health (mode, classes, input size, limits) and returns a ready client. Connection
   * errors, timeouts and 5xx are retried with backoff, at most 3 times (a server being restarted is
   * not a failure; a wrong URL should still fail within seconds).
   */
  static async connect(opts: HttpOracleOptions): Promise<HttpOracle> {
    const url = `${opts.url.replace(/\/+$/, '')}/v1/health`;
    const maxRetries = Math.min(3, opts.maxRetries ?? 6);
    let text = '';
    for (let attempt = 0; ; attempt++) {
      let problem: string;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000) });
        text = await res.text();
        if (res.ok) break;
        problem = `${url} answered ${res.status}: ${text.slice(0, 200)}`;
        if (res.status < 500) throw new Error(`HttpOracle.connect: ${problem}`);
      } catch (e) {
        if ((e as Error).message.startsWith('HttpOracle.connect:')) throw e;
        if (opts.signal?.aborted) throw opts.signal.reason ?? e;
        const cause = (e as { cause?: Error }).cause;
        problem = `cannot reach ${url} (${(e as Error).message}${cause ? `: ${cause.message}` : ''})`;
      }
      if (attempt >= maxRetries) throw new Error(`HttpOracle.connect: ${problem}`);
      await sleep(backoffDelay(attempt + 1, opts.backoffMs ?? 250, opts.maxBackoffMs ?? 30_000, opts.random), opts.signal);
    }
    let h: OracleHealth;
    try {
      h = JSON.parse(text) as OracleHealth;
    } catch {
      throw new Error(`HttpOracle.connect: ${url} did not return JSON: ${text.slice(0, 200)}`);
    }
    if (!h || typeof h.numClasses !== 'number' || !h.input || !(h.input.height > 0) || !(h.input.width > 0) || !h.mode) {
      throw new Error(`HttpOracle.connect: ${url} lacks numClasses, input {height,width} or mode (see docs/oracle-api.md): ${text.slice(0, 200)}`);
    }
    if (h.identity !== undefined && (typeof h.identity !== 'string' || h.identity.length === 0)) {
      throw new Error(`HttpOracle.connect: ${url}: 'identity' must be a non-empty string when present`);
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
    const s = this.meter.stats();
    if (this.quotaLeft !== undefined) s.quotaRemaining = this.quotaLeft;
    return s;
  }

  async query(batch: ImageSet, q: QueryOptions = {}): Promise<OracleAnswer[]> {
    const px = batch.height * batch.width * 3;
    if (batch.images.length !== batch.n * px) {
      throw new Error(`HttpOracle.query: images has ${batch.images.length} bytes, expected n*h*w*3 = ${batch.n * px}`);
    }
    if (batch.n === 0) return [];
    if (q.stop?.aborted) throw stoppedError(0, batch.n); // before anything is recorded as sent
    this.meter.reserve(batch.n);
    const hashes = imageHashes(batch.images, batch.n, px);
    const results: (OracleAnswer | undefined)[] = new Array(batch.n);
    let unsettled = batch.n;
    let answered = 0;
    const call: Call = {
      batch,
      hashes,
      results,
      q,
      deliver: (start, answers) => {
        answers.forEach((a, k) => (results[start + k] = a));
        this.meter.settle(answers.length, answers.length);
        unsettled -= answers.length;
        answered += answers.length;
        q.onAnswers?.(start, answers);
      },
    };
    const size = q.maxImagesPerRequest !== undefined ? Math.max(1, Math.min(q.maxImagesPerRequest, this.serverMax)) : this.perRequest;
    const chunks: PlannedRequest[] = [];
    for (let s = 0; s < batch.n; s += size) chunks.push(this.plan(call, s, Math.min(size, batch.n - s)));
    let failure: unknown;
    try {
      // Written ahead by the caller before anything is sent: a kill after this point leaves a record
      // of exactly which requests may have been charged.
      q.onRequests?.(chunks);
      const queue = [...chunks];
      const worker = async (): Promise<void> => {
        while (failure === undefined && queue.length > 0 && !q.stop?.aborted) {
          const r = queue.shift()!;
          try {
            await this.runRequest(call, r);
          } catch (e) {
            failure ??= e;
          }
        }
      };
      const c = Math.max(1, this.opts.concurrency ?? 4);
      await Promise.all(Array.from({ length: Math.min(c, chunks.length) }, worker));
      if (failure === undefined && answered < batch.n && q.stop?.aborted) failure = stoppedError(answered, batch.n);
    } catch (e) {
      failure ??= e;
    } finally {
      this.meter.settle(unsettled, 0);
    }
    if (failure !== undefined) {
      if (answered > 0 && typeof failure === 'object' && failure !== null) (failure as { partialAnswers?: unknown }).partialAnswers = results;
      throw failure;
    }
    return results as OracleAnswer[];
  }

  private plan(call: Call, start: number, count: number): PlannedRequest {
    return { start, count, key: requestKey(call.hashes.slice(start, start + count), this.info.answer) };
  }

  /** Sub-requests (after a 413 or to fit a quota): recorded by the caller before they are sent. */
  private async runSplit(call: Call, start: number, count: number, size: number): Promise<void> {
    const parts: PlannedRequest[] = [];
    for (let s = start; s < start + count; s += size) parts.push(this.plan(call, s, Math.min(size, start + count - s)));
    call.q.onRequests?.(parts);
    for (const p of parts) await this.runRequest(call, p);
  }

  /** One batch request with retries (same key throughout); splits itself when the server says it is too big. */
  private async runRequest(call: Call, r: PlannedRequest): Promise<void> {
    const { signal } = this.opts;
    const { batch, deliver } = call;
    const { start, count, key } = r;
    const pngs = await Promise.all(Array.from({ length: count }, (_, i) => encodePng(batch.images, start + i, batch.height, batch.width)));
    const body = JSON.stringify({ images: pngs.map((b) => b.toString('base64')) });
    const maxRetries = this.opts.maxRetries ?? 6;
    const maxWaits = this.opts.maxThrottleWaits ?? 100;
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    let retries = 0;
    let waits = 0;
    for (;;) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      if (this.bucket) await this.bucket.acquire(count, signal);
      let transient: string | undefined;
      let res: Response | undefined;
      let text = '';
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        res = await fetch(`${this.base}/v1/classify/batch`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-API-Key': this.opts.apiKey, 'Idempotency-Key': key },
          body,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        text = await res.text();
      } catch (e) {
        if (signal?.aborted) throw signal.reason ?? e;
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        transient = `${(e as Error).name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : (e as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
      }
      if (res && transient === undefined) {
        let json: { answers?: unknown; usage?: { remaining?: unknown }; error?: ErrorBody } | undefined;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        const err = json?.error ?? {};
        const what = `POST ${this.base}/v1/classify/batch answered ${res.status}${err.code ? ` ${err.code}` : ''}: ${err.message ?? text.slice(0, 200)}`;
        if (res.status === 200) {
          const answers = json?.answers;
          let checked: OracleAnswer[] | undefined;
          if (!Array.isArray(answers) || answers.length !== count) {
            // Possibly a proxy mangled the body; the Idempotency-Key lets the server replay without charging.
            transient = `${what} (expected 'answers' with ${count} entries)`;
          } else {
            try {
              checked = answers.map((a, i) => validateAnswer(a, this.info.answer, this.info.numClasses, `answer ${i} from ${this.base}`));
            } catch (e) {
              transient = (e as Error).message;
            }
          }
          if (checked) {
            this.noteQuota(json?.usage?.remaining);
            deliver(start, checked);
            return;
          }
        } else if (res.status === 429 && err.code === 'quota_exceeded') {
          const left = typeof err.remaining === 'number' ? err.remaining : typeof err.quota === 'number' && typeof err.used === 'number' ? err.quota - err.used : undefined;
          this.noteQuota(left);
          // Spend the quota to the last image: the first `left` images as their own request (nothing was
          // charged for this refused one); the rest stays unasked.
          const fits = left !== undefined && left >= 1 && left < count ? left : 0;
          if (fits > 0) await this.runSplit(call, start, fits, fits);
          throw new QueryBudgetExceeded(err.used ?? -1, err.quota ?? -1, count - fits, `server quota for this API key (${err.message ?? ''})`);
        } else if (res.status === 429) {
          this.meter.throttled += 1;
          if (++waits > maxWaits) throw new HttpOracleError(`${what}; gave up after ${maxWaits} waits`);
          const s = retryAfterSeconds(res.headers.get('retry-after')) ?? this.backoff(waits) / 1000;
          // A little jitter so concurrent workers do not all come back in the same millisecond.
          await sleep(s * 1000 + this.random() * 100, signal);
          continue;
        } else if (res.status === 409 && err.code === 'request_in_progress') {
          // A server that does not hold same-key requests until the first finishes says so: wait, then
          // ask again with the same key, which it then replays.
          if (++waits > maxWaits) throw new HttpOracleError(`${what}; gave up after ${maxWaits} waits`);
          const s = retryAfterSeconds(res.headers.get('retry-after')) ?? this.backoff(waits) / 1000;
          await sleep(s * 1000 + this.random() * 100, signal);
          continue;
        } else if (res.status === 413 && typeof err.maxImages === 'number' && err.maxImages >= 1 && err.maxImages < count) {
          this.perRequest = Math.min(this.perRequest, err.maxImages);
          await this.runSplit(call, start, count, err.maxImages);
          return;
        } else if (res.status >= 500 || res.status === 408) {
          transient = what;
        } else {
          throw new HttpOracleError(what);
        }
      }
      this.meter.failedAttempts += 1;
      if (++retries > maxRetries) throw new Error(`HttpOracle: giving up after ${maxRetries} retries: ${transient}`);
      await sleep(this.backoff(retries), signal);
    }
  }

  private noteQuota(remaining: unknown): void {
    if (typeof remaining === 'number' && Number.isFinite(remaining)) this.quotaLeft = Math.max(0, Math.min(this.quotaLeft ?? Infinity, remaining));
  }

  private backoff(attempt: number): number {
    return backoffDelay(attempt, this.opts.backoffMs ?? 250, this.opts.maxBackoffMs ?? 30_000, this.random);
  }
}

/** State of one query() call shared by its requests. */
interface Call {
  batch: ImageSet;
  hashes: string[];
  results: (OracleAnswer | undefined)[];
  q: QueryOptions;
  deliver: (start: number, answers: OracleAnswer[]) => void;
}
