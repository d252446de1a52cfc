import * as crypto from 'crypto';
import * as http from 'http';
import type { AddressInfo } from 'net';
import type { ImageSet } from '../types';
import type { AnswerTransform } from './answers';
import { QueryBudgetExceeded } from './budget';
import { decodeToRgb, InvalidImage } from './decode';
import { LocalOracle } from './local';
import { TokenBucket } from './rateLimit';
import type { AnswerMode, AnswerSpec, Oracle, OracleAnswer } from './types';

/**
 * A saved model served like a cloud vision API (docs/oracle-api.md is the contract). Plain node:http:
 * five routes, JSON in and out, and the behaviour under test (auth, quota, 429, 413) is the point of
 * the exercise, so a framework would add a dependency and hide exactly what we want to control.
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
  /** Remembered Idempotency-Key responses (per server), so a retried request is not charged twice. Default 1024. */
  idempotencyCacheSize?: number;
}

export interface KeyStats {
  requests: number;
  images: number;
  rejected: number;
  quota?: number;
}

export interface ServerStats {
  requests: number;
  /** Images answered and charged. */
  images: number;
  /** Requests answered from the Idempotency-Key cache (not charged again). */
  replayed: number;
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

interface KeyState {
  policy: ApiKeyPolicy & { id: string };
  digest: Buffer;
  bucket?: TokenBucket;
  used: number;
  reserved: number;
  stats: KeyStats;
}

const sha256 = (s: string): Buffer => crypto.createHash('sha256').update(s).digest();

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer | undefined> {
  // Reads everything even past the limit (discarding it) so the client can read our 413 instead of
  // getting a connection reset mid-upload.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => resolve(size <= max ? Buffer.concat(chunks) : undefined));
    req.on('error', reject);
  });
}

function parseJson(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
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

export async function startOracleServer(opts: OracleServerOptions): Promise<OracleServer> {
  const oracle: Oracle =
    opts.oracle ??
    (opts.modelDir
      ? await LocalOracle.fromDir(opts.modelDir, { answer: opts.answer, transforms: opts.transforms, classNames: opts.classNames })
      : (undefined as never));
  if (!oracle) throw new Error('startOracleServer: pass `oracle` or `modelDir`');
  if (!opts.keys || opts.keys.length === 0) throw new Error('startOracleServer: `keys` needs at least one API key');
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const maxImages = opts.maxImagesPerRequest ?? 256;
  const log = opts.log === false ? undefined : opts.log ?? ((l: string) => console.log(l));
  const idemSize = opts.idempotencyCacheSize ?? 1024;
  const { height, width } = oracle.info.input;

  const keys: KeyState[] = opts.keys.map((k, i) => {
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
  const stats: ServerStats = { requests: 0, images: 0, replayed: 0, byStatus: {}, byKey: {} };
  for (const k of keys) stats.byKey[k.policy.id] = k.stats;
  const replay = new Map<string, { n: number; body: string }>();

  function authenticate(req: http.IncomingMessage): KeyState {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const given = (req.headers['x-api-key'] as string | undefined) ?? bearer;
    if (!given) throw new HttpError(401, 'missing_api_key', 'send your API key in the X-API-Key header', {}, { 'WWW-Authenticate': 'Bearer' });
    const d = sha256(given);
    // Compare digests in constant time so response timing does not leak key prefixes.
    const k = keys.find((s) => crypto.timingSafeEqual(s.digest, d));
    if (!k) throw new HttpError(403, 'invalid_api_key', 'the API key is not valid');
    return k;
  }

  async function images(req: http.IncomingMessage, path: string, body: Buffer): Promise<Buffer[]> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (path === '/v1/classify') {
      if (type === 'image/png' || type === 'image/jpeg' || type === 'application/octet-stream') return [body];
      if (type === 'application/json') return [base64Image(parseJson(body).image, 'image')];
      throw new HttpError(415, 'unsupported_media_type', `Content-Type '${type}' not accepted: use image/png, image/jpeg or application/json`);
    }
    if (type !== 'application/json') throw new HttpError(415, 'unsupported_media_type', `Content-Type '${type}' not accepted: the batch endpoint takes application/json`);
    const list = parseJson(body).images;
    if (!Array.isArray(list) || list.length === 0) throw new HttpError(400, 'invalid_request', "'images' must be a non-empty array of base64 strings");
    if (list.length > maxImages) {
      throw new HttpError(413, 'too_many_images', `${list.length} images in one request; at most ${maxImages}`, { maxImages });
    }
    return list.map((v, i) => base64Image(v, `images[${i}]`));
  }

  async function classify(req: http.IncomingMessage, path: string, key: KeyState, ctx: { n: number }): Promise<{ body: unknown; n: number; replayed?: string }> {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBody) {
      req.resume();
      throw new HttpError(413, 'payload_too_large', `request body of ${declared} bytes exceeds the limit of ${maxBody}`, { maxBytes: maxBody });
    }
    const body = await readBody(req, maxBody);
    if (!body) throw new HttpError(413, 'payload_too_large', `request body exceeds the limit of ${maxBody} bytes`, { maxBytes: maxBody });
    const files = await images(req, path, body);
    const n = files.length;
    ctx.n = n; // logged even when the request is refused below
    const idem = req.headers['idempotency-key'] as string | undefined;
    const idemKey = idem ? `${key.policy.id}\n${idem}` : undefined;
    const prior = idemKey ? replay.get(idemKey) : undefined;
    if (prior && prior.n === n) return { body: JSON.parse(prior.body), n, replayed: prior.body };

    const burst = key.bucket?.burst;
    if (burst !== undefined && n > burst) {
      throw new HttpError(413, 'too_many_images', `${n} images exceed this key's rate-limit burst of ${Math.floor(burst)}; split the batch`, { maxImages: Math.floor(burst) });
    }
    const pixels = new Uint8Array(n * height * width * 3);
    // Decoded concurrently (sharp works in libuv's thread pool); the first bad image is reported.
    const decoded = await Promise.allSettled(files.map((f) => decodeToRgb(f, height, width)));
    for (let i = 0; i < n; i++) {
      const d = decoded[i];
      if (d.status === 'fulfilled') {
        pixels.set(d.value, i * height * width * 3);
        continue;
      }
      const e = d.reason;
      if (e instanceof InvalidImage) throw new HttpError(400, 'invalid_image', `${path === '/v1/classify' ? 'image' : `images[${i}]`}: ${e.message}`, path === '/v1/classify' ? {} : { index: i });
      throw e;
    }
    const quota = key.policy.quota;
    if (quota !== undefined && key.used + key.reserved + n > quota) {
      throw new HttpError(429, 'quota_exceeded', `quota of ${quota} images for key '${key.policy.id}' is spent (used ${key.used}, this request needs ${n})`, {
        quota,
        used: key.used,
      });
    }
    const wait = key.bucket?.take(n) ?? 0;
    if (wait > 0) {
      const s = Math.max(1, Math.ceil(wait));
      throw new HttpError(429, 'rate_limited', `rate limit of ${key.policy.ratePerMinute} images/minute exceeded; retry after ${s} s`, { retryAfter: s }, { 'Retry-After': String(s) });
    }
    key.reserved += n;
    let answers: OracleAnswer[];
    try {
      answers = await oracle.query({ images: pixels, n, height, width } as ImageSet);
    } catch (e) {
      if (e instanceof QueryBudgetExceeded) throw new HttpError(429, 'quota_exceeded', `the service's own budget is spent (${e.message})`, { quota: e.limit, used: e.used });
      throw e;
    } finally {
      key.reserved -= n;
    }
    key.used += n;
    key.stats.images += n;
    stats.images += n;
    const usage = { images: n, used: key.used, ...(quota !== undefined ? { quota, remaining: quota - key.used } : {}) };
    const mode = oracle.info.answer;
    const out = path === '/v1/classify' ? { mode, answer: answers[0], usage } : { mode, answers, usage };
    if (idemKey) {
      replay.set(idemKey, { n, body: JSON.stringify(out) });
      if (replay.size > idemSize) replay.delete(replay.keys().next().value as string);
    }
    return { body: out, n };
  }

  const server = http.createServer((req, res) => {
    const t0 = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0];
    let keyId = '-';
    const ctx = { n: 0 };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}, raw?: string): void => {
      const text = raw ?? JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
      res.end(text);
      stats.requests += 1;
      stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      log?.(`${new Date().toISOString()} ${req.method} ${path} key=${keyId} images=${ctx.n} status=${status} ms=${ms.toFixed(1)}`);
    };
    const fail = (e: unknown): void => {
      if (e instanceof HttpError) {
        send(e.status, { error: { code: e.code, message: e.message, ...e.extra } }, e.headers);
      } else {
        send(500, { error: { code: 'internal_error', message: (e as Error)?.message ?? String(e) } });
      }
    };
    (async () => {
      if (path === '/v1/health') {
        if (req.method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET /v1/health', {}, { Allow: 'GET' });
        req.resume();
        const i = oracle.info;
        return send(200, {
          status: 'ok',
          name: i.name,
          mode: i.answer,
          numClasses: i.numClasses,
          ...(i.classNames ? { classNames: i.classNames } : {}),
          input: i.input,
          maxImagesPerRequest: maxImages,
          maxBodyBytes: maxBody,
          pricePer1000: i.pricePer1000,
        });
      }
      if (path !== '/v1/classify' && path !== '/v1/classify/batch') {
        req.resume();
        throw new HttpError(404, 'not_found', `no route ${path}; see /v1/health, /v1/classify, /v1/classify/batch`);
      }
      if (req.method !== 'POST') {
        req.resume();
        throw new HttpError(405, 'method_not_allowed', `use POST ${path}`, {}, { Allow: 'POST' });
      }
      let key: KeyState;
      try {
        key = authenticate(req);
      } catch (e) {
        req.resume();
        throw e;
      }
      keyId = key.policy.id;
      key.stats.requests += 1;
      try {
        const r = await classify(req, path, key, ctx);
        if (r.replayed) stats.replayed += 1;
        send(200, r.body, {}, r.replayed);
      } catch (e) {
        key.stats.rejected += 1;
        throw e;
      }
    })().catch(fail);
  });
  // A client that uploads slowly must not hold a connection forever.
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    oracle,
    stats: () => JSON.parse(JSON.stringify(stats)) as ServerStats,
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
