import * as crypto from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import type { Duplex } from 'stream';
import type { ImageSet } from '../types';
import type { AnswerTransform } from './answers';
import { QueryBudgetExceeded } from './budget';
import { decodeToRgb, InvalidImage } from './decode';
import { IdempotencyConflict, IdempotencyStore } from './idempotency';
import { shortIdentity } from './identity';
import { LocalOracle } from './local';
import { TokenBucket } from './rateLimit';
import { KeyMonitor, type MonitorOptions, type MonitorStats } from '../defender/monitor';
import type { AnswerMode, AnswerSpec, Oracle, OracleAnswer } from './types';

/**
 * A saved model served like a cloud vision API (docs/oracle-api.md is the contract). Plain node:http:
 * three routes, JSON in and out, and the behaviour under test (auth, quota, 429, 413, charging once per
 * Idempotency-Key) is the point of the exercise, so a framework would add a dependency and hide exactly
 * what we want to control.
 *
 * Layout: startOracleServer builds a Service (keys, stats, the idempotency store), and every request is
 * an Exchange handled by one route function (healthRoute, classifyRoute, batchRoute); the routes share
 * readImages (auth, body, parse) and answerImages (idempotency, decode, quota, rate limit, inference).
 * onClientError answers what Node's HTTP parser refuses before a route runs, in JSON too.
 */

export interface ApiKeyPolicy {
  /** The secret sent in X-API-Key (or Authorization: Bearer). */
  key: string;
  /** Name shown in logs and stats; never the secret. Default key-<n>. */
  id?: string;
  /** Total images this key may have answered (undefined = unlimited). */
  quota?: number;
  /** Images per minute, token bucket (undefined = unlimited). Azure's free tier: 20. */
  ratePerMinute?: number;
  /** Largest burst in images; default max(1, ratePerMinute) ... a full minute's worth. */
  burst?: number;
}

export interface OracleServerOptions {
  /** What answers: an oracle (usually a LocalOracle) ... */
  oracle?: Oracle;
  /** ... or a model directory (saveModel format) served through a LocalOracle with `answer`/`transforms`. */
  modelDir?: string;
  answer?: AnswerSpec | AnswerMode | string;
  transforms?: AnswerTransform[];
  classNames?: string[];
  /**
   * Name shown in /v1/health. Default: the oracle's name unless it looks like a file path (the server
   * never shows paths), else `oracle-<first digits of its identity>`.
   */
  name?: string;
  /** API keys; strings get default ids and no limits. At least one is required. */
  keys: (ApiKeyPolicy | string)[];
  /** Default 127.0.0.1: a model endpoint on all interfaces should be a deliberate choice. */
  host?: string;
  /** Default 0 (any free port; read `url`). */
  port?: number;
  /** Largest request body; default 8 MiB. */
  maxBodyBytes?: number;
  /** Most images in one batch request; default 256. */
  maxImagesPerRequest?: number;
  /** One line per request; default console.log; false = silent. */
  log?: ((line: string) => void) | false;
  /** Idempotency-Key answers remembered (per server, in memory, lost on restart). Default 1024. */
  idempotencyCacheSize?: number;
  /** A request must arrive whole within this many ms, else 408; default 60000 (a slow upload must not hold a connection forever). */
  requestTimeoutMs?: number;
  /**
   * Watch each key's query stream for an extraction (PRADA, src/defender/monitor.ts); off by default. An
   * alarm is logged, shown in /v1/stats under the key, and with action 'refuse' ends the key's answers (403).
   */
  monitor?: MonitorOptions;
  /** Keys that may read GET /v1/stats (every key's counts and monitor state); none by default. */
  adminKeys?: string[];
}

export interface KeyStats {
  requests: number;
  images: number;
  rejected: number;
  quota?: number;
  /** The extraction monitor's state for this key (servers started with `monitor`). */
  monitor?: MonitorStats;
}

export interface ServerStats {
  requests: number;
  /** Images answered and charged. */
  images: number;
  /** Requests answered from the Idempotency-Key store (not charged again), including those that waited for the first. */
  replayed: number;
  /** Requests whose client went away before the answer was sent (logged as status 499, nginx's "client closed request"). */
  aborted: number;
  /** Per HTTP status sent (and 499 for client aborts). */
  byStatus: Record<string, number>;
  byKey: Record<string, KeyStats>;
}

export interface OracleServer {
  url: string;
  close(): Promise<void>;
  stats(): ServerStats;
  /** The oracle behind the API (its stats count the images the model actually saw). */
  oracle: Oracle;
}

/** nginx's code for "the client closed the connection before the answer": never sent, only counted and logged. */
export const CLIENT_CLOSED = 499;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The client went away (reset, aborted upload, closed before the answer). */
class ClientGone extends Error {}

interface KeyState {
  policy: ApiKeyPolicy & { id: string };
  digest: Buffer;
  bucket?: TokenBucket;
  used: number;
  reserved: number;
  stats: KeyStats;
  monitor?: KeyMonitor;
}

/** What a charged request stored for replays: the response body as sent. */
interface Answered {
  n: number;
  body: string;
}

/** State shared by every route. */
interface Service {
  oracle: Oracle;
  keys: KeyState[];
  stats: ServerStats;
  maxBody: number;
  maxImages: number;
  publicName: string;
  log?: (line: string) => void;
  idempotency: IdempotencyStore<Answered>;
  /** Sockets answered by onClientError: the route still running on them must not answer or count again. */
  answeredRaw: WeakSet<Duplex>;
  adminDigests: Buffer[];
}

/** One request and its response, with what the log line reports. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  path: string;
  t0: bigint;
  keyId: string;
  /** Images in the request (logged even when it is refused). */
  n: number;
  /** Set when the response closed before we finished it: the client went away. */
  clientGone: boolean;
}

const sha256 = (s: string): Buffer => crypto.createHash('sha256').update(s).digest();
const utf8 = new TextDecoder('utf-8', { fatal: true });

// ---- the pieces every route uses ------------------------------------------------------------------------

function logLine(svc: Service, method: string | undefined, path: string, keyId: string, n: number, status: number, t0: bigint): void {
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  svc.log?.(`${new Date().toISOString()} ${method ?? '-'} ${path} key=${keyId} images=${n} status=${status} ms=${ms.toFixed(1)}`);
}

function count(svc: Service, status: number): void {
  svc.stats.requests += 1;
  svc.stats.byStatus[status] = (svc.stats.byStatus[status] ?? 0) + 1;
  if (status === CLIENT_CLOSED) svc.stats.aborted += 1;
}

/** Sends a JSON response, or counts a client abort when the client is gone. */
function send(svc: Service, ex: Exchange, status: number, body: unknown, headers: Record<string, string> = {}, raw?: string): void {
  const { req, res } = ex;
  if (svc.answeredRaw.has(req.socket)) return; // onClientError answered (408) and counted it
  if (ex.clientGone || res.destroyed || req.socket.destroyed) status = CLIENT_CLOSED;
  else {
    const text = raw ?? JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }
  count(svc, status);
  logLine(svc, req.method, ex.path, ex.keyId, ex.n, status, ex.t0);
}

function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): { error: Record<string, unknown> } {
  return { error: { code, message, ...extra } };
}

function fail(svc: Service, ex: Exchange, e: unknown): void {
  if (e instanceof HttpError) send(svc, ex, e.status, errorBody(e.code, e.message, e.extra), e.headers);
  else if (e instanceof ClientGone) send(svc, ex, CLIENT_CLOSED, undefined);
  else send(svc, ex, 500, errorBody('internal_error', (e as Error)?.message ?? String(e)));
}

function readBody(ex: Exchange, max: number): Promise<Buffer | undefined> {
  // Reads everything even past the limit (discarding it) so the client can read our 413 instead of
  // getting a connection reset mid-upload.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    ex.req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    ex.req.on('end', () => resolve(size <= max ? Buffer.concat(chunks) : undefined));
    // An upload cut short ('aborted', ECONNRESET) is the client leaving, not our failure.
    ex.req.on('error', () => reject(new ClientGone()));
    ex.req.on('close', () => {
      if (!ex.req.complete) reject(new ClientGone());
    });
  });
}

function parseJson(body: Buffer): Record<string, unknown> {
  let text: string;
  try {
    // Fatal decoding: Buffer.toString would turn bad bytes into U+FFFD and hide the error in a field.
    text = utf8.decode(body);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid UTF-8, so not valid JSON');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'invalid_json', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

function base64Image(v: unknown, field: string): Buffer {
  if (typeof v !== 'string' || v.length === 0) throw new HttpError(400, 'invalid_request', `'${field}' must be a base64 string of a PNG or JPEG file`);
  const b64 = v.replace(/^data:[^;,]*;base64,/, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw new HttpError(400, 'invalid_image', `'${field}' is not valid base64`);
  return Buffer.from(b64, 'base64');
}

function contentType(req: http.IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

/** The key a request sends, in X-API-Key or as a bearer token. */
function givenKey(req: http.IncomingMessage): string | undefined {
  return (req.headers['x-api-key'] as string | undefined) ?? /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

function authenticate(svc: Service, req: http.IncomingMessage): KeyState {
  const given = givenKey(req);
  if (!given) throw new HttpError(401, 'missing_api_key', 'send your API key in the X-API-Key header', {}, { 'WWW-Authenticate': 'Bearer' });
  const d = sha256(given);
  // Compare digests in constant time so response timing does not leak key prefixes.
  const k = svc.keys.find((s) => crypto.timingSafeEqual(s.digest, d));
  if (!k) throw new HttpError(403, 'invalid_api_key', 'the API key is not valid');
  return k;
}

/** The body within the size limit (after auth: an unknown client's upload is not worth reading). */
async function limitedBody(svc: Service, ex: Exchange): Promise<Buffer> {
  const declared = Number(ex.req.headers['content-length']);
  if (Number.isFinite(declared) && declared > svc.maxBody) {
    ex.req.resume();
    throw new HttpError(413, 'payload_too_large', `request body of ${declared} bytes exceeds the limit of ${svc.maxBody}`, { maxBytes: svc.maxBody });
  }
  const body = await readBody(ex, svc.maxBody);
  if (!body) throw new HttpError(413, 'payload_too_large', `request body exceeds the limit of ${svc.maxBody} bytes`, { maxBytes: svc.maxBody });
  return body;
}

/** Digest of what a request asks (route and image files): the same Idempotency-Key must come with the same one. */
function fingerprint(path: string, files: Buffer[]): string {
  const h = crypto.createHash('sha256').update(`${path}\n${files.length}\n`);
  for (const f of files) h.update(`${f.length}:`).update(f);
  return h.digest('hex');
}

/**
 * Answers `files` for `key` and charges them, once per Idempotency-Key: checks in the documented order
 * (idempotent replay, burst, decode, quota, rate limit, inference). `shape` turns answers into the body.
 */
async function answerImages(
  svc: Service,
  ex: Exchange,
  key: KeyState,
  files: Buffer[],
  shape: (answers: OracleAnswer[], usage: Record<string, number>) => unknown,
): Promise<{ body: string; replayed: boolean }> {
  const n = files.length;
  ex.n = n;
  const work = async (): Promise<Answered> => ({ n, body: JSON.stringify(await chargeAndAnswer(svc, ex, key, files, shape)) });
  const idem = ex.req.headers['idempotency-key'];
  if (typeof idem !== 'string' || idem === '') return { body: (await work()).body, replayed: false };
  try {
    const r = await svc.idempotency.run(`${key.policy.id}\n${idem}`, fingerprint(ex.path, files), work);
    return { body: r.value.body, replayed: r.replayed };
  } catch (e) {
    if (e instanceof IdempotencyConflict) throw new HttpError(409, 'idempotency_conflict', e.message);
    throw e;
  }
}

async function chargeAndAnswer(
  svc: Service,
  ex: Exchange,
  key: KeyState,
  files: Buffer[],
  shape: (answers: OracleAnswer[], usage: Record<string, number>) => unknown,
): Promise<unknown> {
  const n = files.length;
  const { oracle } = svc;
  const { height, width } = oracle.info.input;
  const burst = key.bucket?.burst;
  if (burst !== undefined && n > burst) {
    throw new HttpError(413, 'too_many_images', `${n} images exceed this key's rate-limit burst of ${Math.floor(burst)}; split the batch`, { maxImages: Math.floor(burst) });
  }
  const pixels = new Uint8Array(n * height * width * 3);
  // Decoded concurrently (sharp works in libuv's thread pool); the first bad image is reported.
  const decoded = await Promise.allSettled(files.map((f) => decodeToRgb(f, height, width)));
  const single = ex.path === '/v1/classify';
  for (let i = 0; i < n; i++) {
    const d = decoded[i];
    if (d.status === 'fulfilled') {
      pixels.set(d.value, i * height * width * 3);
      continue;
    }
    const e = d.reason;
    if (e instanceof InvalidImage) throw new HttpError(400, 'invalid_image', `${single ? 'image' : `images[${i}]`}: ${e.message}`, single ? {} : { index: i });
    throw e;
  }
  if (key.monitor?.flagged && key.monitor.options.action === 'refuse') {
    const m = key.monitor.stats();
    throw new HttpError(403, 'extraction_suspected', `key '${key.policy.id}' is refused: its query stream looks like a model extraction (${m.flaggedBy})`, { flaggedAt: m.flaggedAt, flaggedBy: m.flaggedBy });
  }
  const quota = key.policy.quota;
  if (quota !== undefined && key.used + key.reserved + n > quota) {
    const remaining = Math.max(0, quota - key.used - key.reserved);
    throw new HttpError(429, 'quota_exceeded', `quota of ${quota} images for key '${key.policy.id}' is spent (used ${key.used}, this request needs ${n}, ${remaining} left)`, {
      quota,
      used: key.used,
      remaining,
    });
  }
  const wait = key.bucket?.take(n) ?? 0;
  if (wait > 0) {
    const s = Math.max(1, Math.ceil(wait));
    throw new HttpError(429, 'rate_limited', `rate limit of ${key.policy.ratePerMinute} images/minute exceeded; retry after ${s} s`, { retryAfter: s }, { 'Retry-After': String(s) });
  }
  // Gone before anything was computed: nothing is charged (a retry with the key is then the first).
  if (ex.clientGone) throw new ClientGone();
  key.reserved += n;
  let answers: OracleAnswer[];
  let probs: Float32Array | undefined;
  try {
    const onProbabilities = key.monitor?.needsProbabilities ? (p: Float32Array) => void (probs = p) : undefined;
    answers = await oracle.query({ images: pixels, n, height, width } as ImageSet, { onProbabilities });
  } catch (e) {
    if (e instanceof QueryBudgetExceeded) throw new HttpError(429, 'quota_exceeded', `the service's own budget is spent (${e.message})`, { quota: e.limit, used: e.used, remaining: Math.max(0, e.limit - e.used) });
    throw e;
  } finally {
    key.reserved -= n;
  }
  // Charged from here on, even if the client has gone: with an Idempotency-Key its retry replays this.
  key.used += n;
  key.stats.images += n;
  svc.stats.images += n;
  if (key.monitor) {
    const alarm = key.monitor.observe(pixels, n, height, width, answers.map((a) => a.label), probs);
    const m = (key.stats.monitor = key.monitor.stats());
    const why = m.flaggedBy === 'prada' ? `PRADA W ${m.prada?.w?.toFixed(3)}` : `${(100 * (m.confidence?.rate ?? 0)).toFixed(0)} % of the last ${key.monitor.options.confidence?.window ?? 200} queries answered unsure`;
    if (alarm) svc.log?.(`monitor: key ${key.policy.id} looks like a model extraction (${why}, at query ${m.flaggedAt})${key.monitor.options.action === 'refuse' ? '; refusing its requests from now on' : ''}`);
  }
  const usage = { images: n, used: key.used, ...(quota !== undefined ? { quota, remaining: quota - key.used } : {}) };
  return shape(answers, usage);
}

// ---- the routes -----------------------------------------------------------------------------------------

/** GET /v1/health: what a client needs to talk to us; no key, no file paths. */
function healthRoute(svc: Service, ex: Exchange): void {
  ex.req.resume();
  const i = svc.oracle.info;
  send(svc, ex, 200, {
    status: 'ok',
    name: svc.publicName,
    ...(i.identity ? { identity: i.identity } : {}),
    mode: i.answer,
    numClasses: i.numClasses,
    ...(i.classNames ? { classNames: i.classNames } : {}),
    input: i.input,
    maxImagesPerRequest: svc.maxImages,
    maxBodyBytes: svc.maxBody,
    pricePer1000: i.pricePer1000,
  });
}

/** POST /v1/classify: one image, as the raw file or JSON {image: base64}. */
async function classifyRoute(svc: Service, ex: Exchange): Promise<void> {
  await keyed(svc, ex, async (key, body) => {
    const type = contentType(ex.req);
    let file: Buffer;
    if (type === 'image/png' || type === 'image/jpeg' || type === 'application/octet-stream') file = body;
    else if (type === 'application/json') file = base64Image(parseJson(body).image, 'image');
    else throw new HttpError(415, 'unsupported_media_type', `Content-Type '${type}' not accepted: use image/png, image/jpeg or application/json`);
    return answerImages(svc, ex, key, [file], (answers, usage) => ({ mode: svc.oracle.info.answer, answer: answers[0], usage }));
  });
}

/** POST /v1/classify/batch: JSON {images: [base64, ...]}, one answer per image, in order. */
async function batchRoute(svc: Service, ex: Exchange): Promise<void> {
  await keyed(svc, ex, async (key, body) => {
    const type = contentType(ex.req);
    if (type !== 'application/json') throw new HttpError(415, 'unsupported_media_type', `Content-Type '${type}' not accepted: the batch endpoint takes application/json`);
    const list = parseJson(body).images;
    if (!Array.isArray(list) || list.length === 0) throw new HttpError(400, 'invalid_request', "'images' must be a non-empty array of base64 strings");
    ex.n = list.length;
    if (list.length > svc.maxImages) throw new HttpError(413, 'too_many_images', `${list.length} images in one request; at most ${svc.maxImages}`, { maxImages: svc.maxImages });
    const files = list.map((v, i) => base64Image(v, `images[${i}]`));
    return answerImages(svc, ex, key, files, (answers, usage) => ({ mode: svc.oracle.info.answer, answers, usage }));
  });
}

/**
 * The part of the classify routes around their own: auth, the body, then `compute`; sends its answer
 * (counting replays) or counts the key's refusal (a client that left is not a refusal).
 */
async function keyed(svc: Service, ex: Exchange, compute: (key: KeyState, body: Buffer) => Promise<{ body: string; replayed: boolean }>): Promise<void> {
  let key: KeyState;
  try {
    key = authenticate(svc, ex.req);
  } catch (e) {
    ex.req.resume();
    throw e;
  }
  ex.keyId = key.policy.id;
  key.stats.requests += 1;
  let r: { body: string; replayed: boolean };
  try {
    r = await compute(key, await limitedBody(svc, ex));
  } catch (e) {
    if (!(e instanceof ClientGone)) key.stats.rejected += 1;
    throw e;
  }
  if (r.replayed) svc.stats.replayed += 1;
  send(svc, ex, 200, undefined, {}, r.body);
}

/** GET /v1/stats: the owner's view (admin keys only): every key's counts and extraction-monitor state. */
function statsRoute(svc: Service, ex: Exchange): void {
  ex.req.resume();
  const given = givenKey(ex.req);
  if (!given) throw new HttpError(401, 'missing_api_key', 'send an admin key in the X-API-Key header', {}, { 'WWW-Authenticate': 'Bearer' });
  const d = sha256(given);
  if (!svc.adminDigests.some((a) => crypto.timingSafeEqual(a, d))) throw new HttpError(403, 'forbidden', '/v1/stats needs an admin key (startOracleServer adminKeys, --admin-key)');
  send(svc, ex, 200, svc.stats);
}

const ROUTES: Record<string, { method: 'GET' | 'POST'; handle: (svc: Service, ex: Exchange) => void | Promise<void> }> = {
  '/v1/health': { method: 'GET', handle: healthRoute },
  '/v1/stats': { method: 'GET', handle: statsRoute },
  '/v1/classify': { method: 'POST', handle: classifyRoute },
  '/v1/classify/batch': { method: 'POST', handle: batchRoute },
};

function dispatch(svc: Service, req: http.IncomingMessage, res: http.ServerResponse): void {
  const ex: Exchange = { req, res, path: (req.url ?? '/').split('?')[0], t0: process.hrtime.bigint(), keyId: '-', n: 0, clientGone: false };
  res.once('close', () => {
    if (!res.writableFinished) ex.clientGone = true;
  });
  (async () => {
    const route = ROUTES[ex.path];
    if (!route) {
      req.resume();
      throw new HttpError(404, 'not_found', `no route ${ex.path}; see /v1/health, /v1/classify, /v1/classify/batch, /v1/stats`);
    }
    if (req.method !== route.method) {
      req.resume();
      throw new HttpError(405, 'method_not_allowed', `use ${route.method} ${ex.path}`, {}, { Allow: route.method });
    }
    await route.handle(svc, ex);
  })().catch((e) => fail(svc, ex, e));
}

// ---- what Node's HTTP layer refuses -------------------------------------------------------------------

/** Node's parser and timers refuse some requests before any route runs; answer those in JSON too. */
function onClientError(svc: Service): (err: NodeJS.ErrnoException, socket: Duplex) => void {
  return (err, socket) => {
    // The same checks as Node's default handler: never write into a response already under way.
    const inFlight = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
    // A reset, or the connection closed mid-request (EOF in the parser), is the client leaving: the
    // route of a request in flight counts it as such (499), there is nobody to answer.
    if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, code, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'request headers are too large']
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request_timeout', 'the request did not arrive whole in time']
          : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? [413, 'payload_too_large', 'chunk extensions are too large']
            : [400, 'bad_request', `malformed HTTP request (${err.code ?? 'parse error'}: ${err.message})`];
    const text = JSON.stringify(errorBody(code, message));
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
    );
    svc.answeredRaw.add(socket);
    count(svc, status);
    logLine(svc, inFlight?.req?.method, inFlight?.req?.url?.split('?')[0] ?? '-', '-', 0, status, process.hrtime.bigint());
  };
}

// ---- putting it together --------------------------------------------------------------------------------

function keyStates(opts: OracleServerOptions): KeyState[] {
  if (!opts.keys || opts.keys.length === 0) throw new Error('startOracleServer: `keys` needs at least one API key');
  return opts.keys.map((k, i) => {
    const p = typeof k === 'string' ? { key: k } : k;
    if (!p.key) throw new Error(`startOracleServer: keys[${i}].key is empty`);
    if (p.quota !== undefined && !(Number.isInteger(p.quota) && p.quota >= 0)) throw new Error(`startOracleServer: keys[${i}].quota must be an integer >= 0`);
    const id = p.id ?? `key-${i + 1}`;
    return {
      policy: { ...p, id },
      digest: sha256(p.key),
      bucket: p.ratePerMinute !== undefined ? new TokenBucket(p.ratePerMinute, p.burst ?? Math.max(1, p.ratePerMinute)) : undefined,
      used: 0,
      reserved: 0,
      stats: { requests: 0, images: 0, rejected: 0, quota: p.quota },
    };
  });
}

/** The name /v1/health shows: never a file path (a server's directory layout is nobody's business). */
function publicNameOf(oracle: Oracle, name?: string): string {
  if (name) return name;
  const own = oracle.info.name;
  if (own && !/[/\\]/.test(own)) return own;
  return oracle.info.identity ? `oracle-${shortIdentity(oracle.info.identity)}` : 'oracle';
}

async function listen(server: http.Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
}

export async function startOracleServer(opts: OracleServerOptions): Promise<OracleServer> {
  const oracle: Oracle | undefined =
    opts.oracle ?? (opts.modelDir ? await LocalOracle.fromDir(opts.modelDir, { answer: opts.answer, transforms: opts.transforms, classNames: opts.classNames }) : undefined);
  if (!oracle) throw new Error('startOracleServer: pass `oracle` or `modelDir`');
  const svc: Service = {
    oracle,
    keys: keyStates(opts),
    stats: { requests: 0, images: 0, replayed: 0, aborted: 0, byStatus: {}, byKey: {} },
    maxBody: opts.maxBodyBytes ?? 8 * 1024 * 1024,
    maxImages: opts.maxImagesPerRequest ?? 256,
    publicName: publicNameOf(oracle, opts.name),
    log: opts.log === false ? undefined : opts.log ?? ((l: string) => console.log(l)),
    idempotency: new IdempotencyStore<Answered>(opts.idempotencyCacheSize ?? 1024),
    answeredRaw: new WeakSet(),
    adminDigests: (opts.adminKeys ?? []).map(sha256),
  };
  for (const k of svc.keys) {
    svc.stats.byKey[k.policy.id] = k.stats;
    if (opts.monitor) k.monitor = new KeyMonitor(opts.monitor);
  }
  if (opts.monitor?.confidence && !(oracle instanceof LocalOracle)) {
    throw new Error('startOracleServer: monitor.confidence reads the model\'s own probabilities; serve a LocalOracle (a model directory)');
  }
  const requestTimeout = opts.requestTimeoutMs ?? 60_000;
  const server = http.createServer(
    {
      requestTimeout,
      headersTimeout: Math.min(requestTimeout, 60_000),
      // Node looks for timed-out requests every 30 s by default; a short timeout needs a shorter look.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(requestTimeout / 4))),
    },
    (req, res) => dispatch(svc, req, res),
  );
  server.on('clientError', onClientError(svc));
  const url = await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  return {
    url,
    oracle,
    stats: () => JSON.parse(JSON.stringify(svc.stats)) as ServerStats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      }).finally(() => {
        // An oracle the server loaded itself (modelDir) is the server's to free.
        if (!opts.oracle && oracle instanceof LocalOracle) oracle.dispose();
      }),
  };
}
