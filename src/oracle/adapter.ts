import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import type { ImageSet } from '../types';
import { CIFAR10_CLASSES } from '../types';
import { formatAnswerSpec, normalizeAnswerSpec } from './answers';
import { QueryBudgetExceeded, QueryMeter } from './budget';
import { backoffDelay, retryAfterSeconds } from './client';
import { digestOf, imageHashes, requestKey, shortIdentity } from './identity';
import { sleep, TokenBucket } from './rateLimit';
import type { AnswerSpec, Oracle, OracleAnswer, OracleInfo, OracleStats, PlannedRequest, QueryOptions } from './types';

/**
 * An outside JSON classification API (a cloud vision service, a model server nobody here wrote) behind
 * the kit's Oracle interface, described by a small adapter file instead of code (docs/steal.md):
 * where to send an image and how (JSON base64 field, multipart form, raw body), at what size and in
 * which format, where the answer is in the response, and which of the API's class names count as which
 * of the attack's classes.
 *
 * The attack's classes are fixed (CIFAR-10 by default) but an outside API has its own: "tabby" and
 * "Persian cat" both mean cat, "toaster" means nothing. Images whose answer is a name the map leaves
 * out are still paid for, so they get an answer too: the extra class UNMAPPED (index = number of attack
 * classes). labelImages caches it like any answer (never paid twice) and the steal command drops those
 * images before writing the stolen set (src/steal.ts).
 *
 * Every API answer is also kept, before it is used, in a raw store keyed by the image's digest (append
 * + fsync per HTTP response): a kill between two labelImages batches, or an edited class map, then
 * costs nothing on the next run, because the raw answers are independent of the map.
 */

export const ADAPTER_FORMAT = 'copycat-oracle-adapter';
export const RAW_STORE_FORMAT = 'copycat-adapter-api-answers';
/** Class name of the marker answer for images the API called something the class map leaves out. */
export const UNMAPPED = '(unmapped)';

export type RequestEncoding = 'json' | 'multipart' | 'raw';
export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** A validated, normalised adapter file. */
export interface AdapterSpec {
  /** Where it was read from (error messages only; never part of the oracle's identity). */
  file: string;
  name: string;
  url: string;
  method: 'POST' | 'PUT';
  auth?: { header: string; prefix: string; env: string };
  request: {
    encoding: RequestEncoding;
    /** json: where the base64 image goes, e.g. "instances[].b64" ("[]": one array entry per image). */
    imageField?: string;
    /** json: whether several images go in one request (imageField has "[]"). */
    batch: boolean;
    maxImagesPerRequest: number;
    /** json: other fields of the body, sent as they are. */
    body?: Record<string, unknown>;
    /** json: send "data:image/jpeg;base64,..." instead of bare base64. */
    dataUrl: boolean;
    /** multipart: the form field of the file. */
    field?: string;
    /** multipart: other form fields. */
    fields: Record<string, string>;
    headers: Record<string, string>;
    /** Header carrying a key derived from the request's image digests (for APIs that replay on it). */
    idempotencyHeader?: string;
  };
  image: { format: ImageFormat; width: number; height: number; quality: number; kernel: keyof sharp.KernelEnum };
  response: {
    /** Path of the API's class name (or index into classNames) for each image. */
    label?: string;
    /** Path of the API's scores for each image: {name: p}, [p...] with classNames, or [{label, score}...]. */
    scores?: string;
    classNames?: string[];
    scoreName?: string;
    scoreValue?: string;
  };
  /** The API's class names (trimmed, lower-cased) to attack class indices. */
  classMap: Map<string, number>;
  /** The attack's classes, in label order; default CIFAR-10. */
  classes: string[];
  pricePer1000?: number;
  ratePerMinute?: number;
  concurrency?: number;
  timeoutMs?: number;
  maxRetries?: number;
}

/** A problem with an adapter file, naming the file and the field. */
export class AdapterFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterFileError';
  }
}

/** A failure retrying will not fix (4xx, an answer the adapter's paths do not find). */
export class AdapterOracleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdapterOracleError';
  }
}

// ---- paths --------------------------------------------------------------------------------------------

/** A parsed answer path: keys, array indices, and at most one "*" (the per-image axis of a batch). */
type PathSeg = string | number | '*';

/**
 * "outputs[*].scores" -> ['outputs', '*', 'scores']; "predictions[0].label" -> ['predictions', 0, 'label'];
 * "$" or "" -> [] (the whole response). Keys may hold anything but '.', '[' and ']'.
 */
export function parsePath(p: string): PathSeg[] {
  const s = p.trim();
  if (s === '' || s === '$') return [];
  const body = s.startsWith('$.') ? s.slice(2) : s.startsWith('$[') ? s.slice(1) : s;
  const segs: PathSeg[] = [];
  const fail = (i: number, why: string): never => {
    throw new Error(`cannot parse path '${p}' at character ${i + 1}: ${why}`);
  };
  let i = 0;
  while (i < body.length) {
    if (body[i] === '[') {
      const j = body.indexOf(']', i);
      if (j < 0) fail(i, "'[' without ']'");
      const inner = body.slice(i + 1, j);
      if (inner === '*') segs.push('*');
      else if (/^\d+$/.test(inner)) segs.push(Number(inner));
      else fail(i, `expected [n] or [*], got [${inner}]`);
      i = j + 1;
      continue;
    }
    if (body[i] === '.') {
      if (i === 0) fail(i, "a path cannot start with '.'");
      i++;
    } else if (i > 0) fail(i, "expected '.' or '[' between parts");
    let j = i;
    while (j < body.length && body[j] !== '.' && body[j] !== '[' && body[j] !== ']') j++;
    if (j === i) fail(i, 'expected a key');
    segs.push(body.slice(i, j));
    i = j;
  }
  return segs;
}

function describeValue(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 120)}...` : s;
}

/**
 * The values at `segs` in `root`: one per image. With a "*", the array there must hold exactly `count`
 * entries (one per image sent); without one there is one image and one value.
 */
function extract(root: unknown, segs: PathSeg[], count: number, pathText: string): unknown[] {
  const walk = (v: unknown, from: number, upto: number, at: string): unknown => {
    for (let i = from; i < upto; i++) {
      const s = segs[i];
      if (typeof s === 'number') {
        if (!Array.isArray(v) || s >= v.length) throw new AdapterOracleError(`response has no [${s}] at '${at}' (${describeValue(v)})`);
        v = v[s];
        at += `[${s}]`;
      } else {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || !(s in v)) throw new AdapterOracleError(`response has no '${s}' at '${at || '$'}' (${describeValue(v)})`);
        v = (v as Record<string, unknown>)[s as string];
        at += at ? `.${s}` : s;
      }
    }
    return v;
  };
  const star = segs.indexOf('*');
  try {
    if (star < 0) return [walk(root, 0, segs.length, '')];
    const arr = walk(root, 0, star, '');
    if (!Array.isArray(arr)) throw new AdapterOracleError(`response has no array at '${segs.slice(0, star).join('.') || '$'}' (${describeValue(arr)})`);
    if (arr.length !== count) throw new AdapterOracleError(`the array at '${pathText}' has ${arr.length} entries for ${count} images sent`);
    return arr.map((e, i) => walk(e, star + 1, segs.length, `[${i}]`));
  } catch (e) {
    if (e instanceof AdapterOracleError) throw new AdapterOracleError(`answer path '${pathText}': ${e.message}`);
    throw e;
  }
}

/** Sets body[segs] = value, creating objects on the way. */
function setIn(obj: Record<string, unknown>, keys: string[], value: unknown): void {
  let o = obj;
  keys.slice(0, -1).forEach((k) => {
    if (typeof o[k] !== 'object' || o[k] === null || Array.isArray(o[k])) o[k] = {};
    o = o[k] as Record<string, unknown>;
  });
  o[keys[keys.length - 1]] = value;
}

// ---- reading and checking the adapter file ---------------------------------------------------------------

const TOP_KEYS = ['format', 'version', 'name', 'url', 'method', 'auth', 'request', 'image', 'response', 'classMap', 'classes', 'pricePer1000', 'ratePerMinute', 'concurrency', 'timeoutMs', 'maxRetries'];
const KERNELS = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'];

/** "Tabby Cat " and "tabby cat" are the same class name: APIs differ in case and spacing. */
export function normalizeClassName(s: string): string {
  return s.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** Reads and checks an adapter file; errors name the file, the field and what was expected. */
export function loadAdapterFile(file: string): AdapterSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AdapterFileError(`adapter file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AdapterFileError(`adapter file ${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseAdapter(json, file);
}

/** Checks an adapter object (the parsed file); `file` names it in errors. */
export function parseAdapter(json: unknown, file: string): AdapterSpec {
  const bad = (field: string, want: string, ...got: unknown[]): never => {
    throw new AdapterFileError(`adapter file ${file}: field '${field}' ${want}${got.length ? ` (got ${describeValue(got[0])})` : ''}`);
  };
  const obj = (v: unknown, field: string): Record<string, unknown> => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(field, 'must be a JSON object', v);
    return v as Record<string, unknown>;
  };
  // Unknown keys are almost always typos ("respone"), which would otherwise silently fall back to defaults.
  const onlyKeys = (o: Record<string, unknown>, allowed: string[], where: string): void => {
    for (const k of Object.keys(o)) {
      if (k.startsWith('_')) continue; // "_comment": JSON has no comments
      if (!allowed.includes(k)) bad(where ? `${where}.${k}` : k, `is not a known field; expected one of ${allowed.join(', ')} (keys starting with '_' are ignored)`);
    }
  };
  const str = (v: unknown, field: string, opt = false): string | undefined => {
    if (v === undefined && opt) return undefined;
    if (typeof v !== 'string' || v.trim() === '') bad(field, 'must be a non-empty string', v);
    return v as string;
  };
  const posInt = (v: unknown, field: string, max = Infinity): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) bad(field, `must be an integer in 1..${max}`, v);
    return v as number;
  };
  const posNum = (v: unknown, field: string, allowZero = false): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) bad(field, `must be a number ${allowZero ? '>= 0' : '> 0'}`, v);
    return v as number;
  };
  const checkPath = (v: string, field: string): PathSeg[] => {
    try {
      return parsePath(v);
    } catch (e) {
      return bad(field, `must be a path like 'outputs[*].label' or 'predictions[0].scores': ${(e as Error).message}`);
    }
  };
  const strMap = (v: unknown, field: string): Record<string, string> => {
    if (v === undefined) return {};
    const o = obj(v, field);
    for (const [k, x] of Object.entries(o)) if (typeof x !== 'string') bad(`${field}.${k}`, 'must be a string', x);
    return o as Record<string, string>;
  };

  const top = obj(json, '(top level)');
  onlyKeys(top, TOP_KEYS, '');
  if (top.format !== undefined && top.format !== ADAPTER_FORMAT) bad('format', `must be '${ADAPTER_FORMAT}' when given`, top.format);
  if (top.version !== undefined && top.version !== 1) bad('version', 'must be 1 when given', top.version);

  const url = str(top.url, 'url')!;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad('url', 'must be an absolute http:// or https:// URL', url);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') bad('url', 'must be an http:// or https:// URL', url);
  // Keys in the URL would end up in logs and shell history: they belong in auth.env.
  if (u.username || u.password) bad('url', 'must not hold a user name or password; put the key in the environment variable named by auth.env');
  const name = str(top.name, 'name', true) ?? `${u.host}${u.pathname}`;
  const method = (top.method ?? 'POST') as string;
  if (method !== 'POST' && method !== 'PUT') bad('method', "must be 'POST' or 'PUT'", method);

  let auth: AdapterSpec['auth'];
  if (top.auth !== undefined) {
    const a = obj(top.auth, 'auth');
    onlyKeys(a, ['header', 'prefix', 'env'], 'auth');
    const env = str(a.env, 'auth.env')!;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) bad('auth.env', 'must be the NAME of an environment variable (letters, digits, _), not the key itself');
    const header = str(a.header, 'auth.header', true) ?? 'Authorization';
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) bad('auth.header', 'must be an HTTP header name', header);
    if (a.prefix !== undefined && typeof a.prefix !== 'string') bad('auth.prefix', "must be a string such as 'Bearer '", a.prefix);
    const prefix = (a.prefix as string | undefined) ?? (header.toLowerCase() === 'authorization' ? 'Bearer ' : '');
    auth = { header, prefix, env };
  }

  const r = obj(top.request ?? {}, 'request');
  onlyKeys(r, ['encoding', 'imageField', 'body', 'dataUrl', 'field', 'fields', 'headers', 'maxImagesPerRequest', 'idempotencyHeader'], 'request');
  const encoding = (r.encoding ?? 'json') as RequestEncoding;
  if (!['json', 'multipart', 'raw'].includes(encoding)) bad('request.encoding', "must be 'json', 'multipart' or 'raw'", r.encoding);
  let imageField: string | undefined;
  let batch = false;
  if (encoding === 'json') {
    imageField = str(r.imageField, 'request.imageField')!;
    const parts = imageField.split('[]');
    if (parts.length > 2) bad('request.imageField', "may hold '[]' (one array entry per image) at most once", imageField);
    batch = parts.length === 2;
    const keysOk = (s: string): boolean => s === '' || s.split('.').every((k) => k !== '' && !/[[\]]/.test(k));
    if (!keysOk(parts[0]) || (batch && !keysOk(parts[1].replace(/^\./, ''))) || (batch && parts[0] === '') || (batch && parts[1] !== '' && !parts[1].startsWith('.'))) {
      bad('request.imageField', "must be dot-separated keys with at most one '[]', e.g. 'image', 'inputs[].image', 'instances[].b64', 'images[]'", imageField);
    }
    if (r.field !== undefined || r.fields !== undefined) bad('request.field', "is for encoding 'multipart' only");
  } else {
    if (r.imageField !== undefined || r.body !== undefined || r.dataUrl !== undefined) bad('request.imageField', `is for encoding 'json' only (this adapter sends '${encoding}')`);
    if (encoding === 'raw' && (r.field !== undefined || r.fields !== undefined)) bad('request.field', "is for encoding 'multipart' only");
  }
  const field = encoding === 'multipart' ? str(r.field, 'request.field', true) ?? 'image' : undefined;
  const maxImagesPerRequest = posInt(r.maxImagesPerRequest, 'request.maxImagesPerRequest', 100_000) ?? (batch ? 16 : 1);
  if (!batch && maxImagesPerRequest !== 1) bad('request.maxImagesPerRequest', `must be 1 when one image goes per request (no '[]' in request.imageField, or encoding '${encoding}')`, maxImagesPerRequest);
  const body = r.body === undefined ? undefined : obj(r.body, 'request.body');
  if (r.dataUrl !== undefined && typeof r.dataUrl !== 'boolean') bad('request.dataUrl', 'must be true or false', r.dataUrl);
  const headers = strMap(r.headers, 'request.headers');
  for (const h of Object.keys(headers)) {
    if (auth && h.toLowerCase() === auth.header.toLowerCase()) bad(`request.headers.${h}`, 'duplicates the auth header: keys come from the environment variable named by auth.env, never from the file');
    if (h.toLowerCase() === 'content-type') bad(`request.headers.${h}`, 'is set from request.encoding and image.format');
  }
  const idempotencyHeader = str(r.idempotencyHeader, 'request.idempotencyHeader', true);

  const im = obj(top.image ?? {}, 'image');
  onlyKeys(im, ['format', 'width', 'height', 'quality', 'kernel'], 'image');
  const format = (im.format ?? 'png') as ImageFormat;
  if (!['jpeg', 'png', 'webp'].includes(format)) bad('image.format', "must be 'jpeg', 'png' or 'webp'", im.format);
  const width = posInt(im.width, 'image.width', 4096) ?? 32;
  const height = posInt(im.height, 'image.height', 4096) ?? width;
  const quality = posInt(im.quality, 'image.quality', 100) ?? 90;
  const kernel = (im.kernel ?? 'lanczos3') as keyof sharp.KernelEnum;
  if (!KERNELS.includes(kernel)) bad('image.kernel', `must be one of ${KERNELS.join(', ')}`, im.kernel);

  const resp = obj(top.response, 'response');
  onlyKeys(resp, ['label', 'scores', 'classNames', 'scoreName', 'scoreValue'], 'response');
  const label = str(resp.label, 'response.label', true);
  const scores = str(resp.scores, 'response.scores', true);
  if (label === undefined && scores === undefined) bad('response', "needs 'label' (path of the class name) or 'scores' (path of the class scores), or both");
  for (const [f, p] of [['response.label', label], ['response.scores', scores]] as const) {
    if (p === undefined) continue;
    const segs = checkPath(p, f);
    const stars = segs.filter((x) => x === '*').length;
    if (batch && stars !== 1) bad(f, `must hold exactly one '[*]' (the per-image array) because request.imageField sends several images per request`, p);
    if (!batch && stars !== 0) bad(f, `must not hold '[*]' when one image goes per request; use [0] for the first entry`, p);
  }
  let classNames: string[] | undefined;
  if (resp.classNames !== undefined) {
    if (!Array.isArray(resp.classNames) || resp.classNames.length === 0 || resp.classNames.some((c) => typeof c !== 'string')) bad('response.classNames', "must be a non-empty array of the API's class names, in its index order", resp.classNames);
    classNames = resp.classNames as string[];
  }
  const scoreName = str(resp.scoreName, 'response.scoreName', true);
  const scoreValue = str(resp.scoreValue, 'response.scoreValue', true);

  let classes: string[] = [...CIFAR10_CLASSES];
  if (top.classes !== undefined) {
    if (!Array.isArray(top.classes) || top.classes.length < 2 || top.classes.some((c) => typeof c !== 'string' || !c.trim())) bad('classes', "must be an array of at least 2 class names (the attack's classes in label order; default CIFAR-10)", top.classes);
    classes = top.classes as string[];
    if (new Set(classes).size !== classes.length) bad('classes', 'must not repeat a name', classes);
    if (classes.includes(UNMAPPED)) bad('classes', `must not contain the reserved name '${UNMAPPED}'`);
  }
  const cm = obj(top.classMap, 'classMap');
  const classMap = new Map<string, number>();
  for (const [apiName, target] of Object.entries(cm)) {
    if (!apiName.trim()) bad('classMap', 'must not have an empty API class name as a key');
    if (typeof target !== 'string' || !classes.includes(target)) bad(`classMap.${apiName}`, `must be one of the attack's classes: ${classes.join(', ')}`, target);
    const k = normalizeClassName(apiName);
    const t = classes.indexOf(target as string);
    if (classMap.has(k) && classMap.get(k) !== t) bad(`classMap.${apiName}`, `maps to '${target}' but another key with the same name (case and spaces ignored) maps to '${classes[classMap.get(k)!]}'`);
    classMap.set(k, t);
  }
  if (classMap.size === 0) bad('classMap', "must map at least one of the API's class names to an attack class");

  return {
    file, name, url, method: method as 'POST' | 'PUT', auth,
    request: { encoding, imageField, batch, maxImagesPerRequest, body, dataUrl: r.dataUrl === true, field, fields: encoding === 'multipart' ? strMap(r.fields, 'request.fields') : {}, headers, idempotencyHeader },
    image: { format, width, height, quality, kernel },
    response: { label, scores, classNames, scoreName, scoreValue },
    classMap, classes,
    pricePer1000: posNum(top.pricePer1000, 'pricePer1000', true),
    ratePerMinute: posNum(top.ratePerMinute, 'ratePerMinute'),
    concurrency: posInt(top.concurrency, 'concurrency', 256),
    timeoutMs: posInt(top.timeoutMs, 'timeoutMs', 3_600_000),
    maxRetries: top.maxRetries === 0 ? 0 : posInt(top.maxRetries, 'maxRetries', 100),
  };
}

/** What the API answers depend on (not the class map): the raw store is valid while this stays the same. */
function apiIdentity(spec: AdapterSpec): unknown {
  const { url, method, request, image, response } = spec;
  return { url, method, request: { ...request, maxImagesPerRequest: undefined }, image, response };
}

/**
 * The oracle's identity (identity.ts): the API's settings, the class map and the answer mode. The query
 * cache is keyed by it, so an edited map or another endpoint is another oracle, whatever the file is called.
 */
export function adapterIdentity(spec: AdapterSpec, answer: AnswerSpec | string = 'label'): string {
  const map = [...spec.classMap.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return digestOf({ kind: 'adapter', api: apiIdentity(spec), map, classes: spec.classes, answer: normalizeAnswerSpec(answer) });
}

// ---- the raw store ------------------------------------------------------------------------------------------

/** What the API said about one image, before the class map: its top class name and, if asked, scores. */
export interface RawApiAnswer {
  top: string;
  scores?: Record<string, number>;
}

/**
 * Append-only JSON lines: a header naming the API settings, then {"h": sha1 of the image's RGB bytes,
 * "top": name, "scores"?: {...}} per image, written and fsync'ed per HTTP response before the answer is
 * used. A torn last line (kill mid-write) is cut off on open.
 */
class RawStore {
  private readonly map = new Map<string, RawApiAnswer>();
  private fd = -1;

  constructor(readonly file: string, identity: unknown, url: string) {
    // A digest, not the settings themselves: request.headers may hold values nobody wants in a data file.
    const header = { format: RAW_STORE_FORMAT, version: 1, url, api: digestOf(identity) };
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (!text.includes('\n')) {
      this.fd = fs.openSync(file, 'w');
      fs.writeSync(this.fd, JSON.stringify(header) + '\n');
      fs.fsyncSync(this.fd);
      return;
    }
    const lines = text.split('\n');
    const tail = lines.pop() ?? '';
    let h: { format?: unknown; version?: unknown; api?: unknown };
    try {
      h = JSON.parse(lines[0]);
    } catch {
      throw new Error(`API answer store ${file}: line 1 is not a JSON header; not a ${RAW_STORE_FORMAT} file`);
    }
    if (h.format !== RAW_STORE_FORMAT || h.version !== 1) throw new Error(`API answer store ${file}: not a ${RAW_STORE_FORMAT} version 1 file`);
    if (JSON.stringify(h.api) !== JSON.stringify(header.api)) {
      throw new Error(`API answer store ${file} was written for other API settings (url, request, image or response paths differ); use another output name, or delete it to pay for the answers again`);
    }
    for (let i = 1; i < lines.length; i++) {
      if (!lines[i]) continue;
      let rec: { h?: unknown; top?: unknown; scores?: unknown };
      try {
        rec = JSON.parse(lines[i]);
      } catch (e) {
        throw new Error(`API answer store ${file}: line ${i + 1} is not valid JSON (${(e as Error).message}); only the last line may be torn, this file is damaged`);
      }
      if (typeof rec.h !== 'string' || typeof rec.top !== 'string') throw new Error(`API answer store ${file}: line ${i + 1} lacks 'h' or 'top'`);
      this.map.set(rec.h, { top: rec.top, ...(rec.scores && typeof rec.scores === 'object' ? { scores: rec.scores as Record<string, number> } : {}) });
    }
    this.fd = fs.openSync(file, 'a');
    if (tail) {
      // A kill between a record's last byte and its newline leaves a whole (paid) answer: keep it.
      // Anything else is cut off so the next append starts on a fresh line.
      let rec: { h?: unknown; top?: unknown; scores?: unknown } | undefined;
      try {
        rec = JSON.parse(tail);
      } catch {
        rec = undefined;
      }
      if (rec && typeof rec.h === 'string' && typeof rec.top === 'string') {
        this.map.set(rec.h, { top: rec.top, ...(rec.scores && typeof rec.scores === 'object' ? { scores: rec.scores as Record<string, number> } : {}) });
        fs.writeSync(this.fd, '\n');
      } else fs.ftruncateSync(this.fd, Buffer.byteLength(text) - Buffer.byteLength(tail));
    }
  }

  get(h: string): RawApiAnswer | undefined {
    return this.map.get(h);
  }

  append(entries: { h: string; a: RawApiAnswer }[]): void {
    if (this.fd < 0) throw new Error(`API answer store ${this.file} is closed`);
    let text = '';
    for (const { h, a } of entries) {
      // A richer answer (with scores) replaces a label-only one; the later line wins on reading.
      const old = this.map.get(h);
      if (old && (old.scores || !a.scores)) continue;
      this.map.set(h, a);
      text += JSON.stringify({ h, ...a }) + '\n';
    }
    if (!text) return;
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

// ---- the oracle ---------------------------------------------------------------------------------------------

export interface AdapterOracleOptions {
  /** label (default), topk:<k> or probabilities; the last two need response.scores. */
  answer?: AnswerSpec | string;
  /** Client-side budget in images actually sent (answers from the raw store are free). */
  budget?: number;
  /** Overrides the file's pricePer1000 (default 1). */
  pricePer1000?: number;
  /** Requests in flight at once; default the file's, else 2. */
  concurrency?: number;
  /** Client-side images/minute; default the file's (none if absent). */
  ratePerMinute?: number;
  timeoutMs?: number;
  maxRetries?: number;
  /** 429s waited out per request before giving up; default 100. */
  maxThrottleWaits?: number;
  /** First backoff in ms (doubling, randomised between 50% and 100%); default 250. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * Default for QueryOptions.stop: no new requests, waits (throttle, backoff) end; requests already sent
   * finish, because the API may have charged them. query() then rejects with the answers that arrived.
   */
  signal?: AbortSignal;
  /** Where the environment variable named by auth.env is read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Overrides auth.env (the CLI's --key-env). */
  keyEnv?: string;
  /** The raw store of API answers (see the file comment); none when absent. */
  rawStoreFile?: string;
  random?: () => number;
}

export interface AdapterStats {
  /** Answers (this process, paid or from the raw store) whose top class the map leaves out. */
  unmapped: number;
  /** Those answers per API class name (as the API spelled it). */
  unmappedNames: Record<string, number>;
  /** Images answered from the raw store instead of the API (not paid). */
  fromRawStore: number;
}

export class AdapterOracle implements Oracle {
  readonly info: OracleInfo;
  /** The marker label of images the class map leaves out (= number of attack classes). */
  readonly unmappedLabel: number;
  private readonly meter: QueryMeter;
  private readonly bucket?: TokenBucket;
  private readonly key?: string;
  private readonly store?: RawStore;
  private readonly random: () => number;
  private perRequest: number;
  private readonly counts: AdapterStats = { unmapped: 0, unmappedNames: {}, fromRawStore: 0 };

  constructor(readonly spec: AdapterSpec, private readonly opts: AdapterOracleOptions = {}) {
    const answer = normalizeAnswerSpec(opts.answer);
    if (answer.mode === 'rounded') throw new Error(`adapter ${spec.file}: answer mode 'rounded' is not offered for outside APIs; use probabilities`);
    if (answer.mode !== 'label' && !spec.response.scores) {
      throw new AdapterFileError(`adapter file ${spec.file}: answer mode ${formatAnswerSpec(answer)} needs field 'response.scores' (where the API's class scores are)`);
    }
    if (spec.auth) {
      const envName = opts.keyEnv ?? spec.auth.env;
      const key = (opts.env ?? process.env)[envName];
      if (!key) throw new Error(`adapter ${spec.file}: the API key is read from environment variable ${envName}, which is not set (export it; keys never go on the command line)`);
      this.key = key;
    }
    this.unmappedLabel = spec.classes.length;
    const identity = adapterIdentity(spec, answer);
    this.meter = new QueryMeter({ budget: opts.budget, pricePer1000: opts.pricePer1000 ?? spec.pricePer1000 });
    const rate = opts.ratePerMinute ?? spec.ratePerMinute;
    this.bucket = rate !== undefined ? new TokenBucket(rate, Math.max(1, Math.min(rate, spec.request.maxImagesPerRequest))) : undefined;
    this.perRequest = spec.request.maxImagesPerRequest;
    this.random = opts.random ?? Math.random;
    this.info = {
      // The digest in the name tells caches of different maps apart in logs; the cache is keyed by identity.
      name: `${spec.name} [adapter ${shortIdentity(identity)}]`,
      identity,
      kind: 'adapter',
      answer,
      numClasses: spec.classes.length + 1,
      classNames: [...spec.classes, UNMAPPED],
      input: { height: spec.image.height, width: spec.image.width },
      pricePer1000: this.meter.pricePer1000,
      budget: opts.budget,
      transforms: [],
    };
    if (opts.rawStoreFile) this.store = new RawStore(opts.rawStoreFile, apiIdentity(spec), spec.url);
  }

  static fromFile(file: string, opts: AdapterOracleOptions = {}): AdapterOracle {
    return new AdapterOracle(loadAdapterFile(file), opts);
  }

  stats(): OracleStats {
    return this.meter.stats();
  }

  adapterStats(): AdapterStats {
    return { ...this.counts, unmappedNames: { ...this.counts.unmappedNames } };
  }

  /** The API's answer for an image digest, from the raw store (for reports on unmapped names). */
  rawAnswer(hash: string): RawApiAnswer | undefined {
    return this.store?.get(hash);
  }

  close(): void {
    this.store?.close();
  }

  /** Hides the API key in anything shown to the user (a server may echo headers in an error body). */
  redact(text: string): string {
    return this.key ? text.split(this.key).join('[redacted]') : text;
  }

  /**
   * Answers from the raw store are delivered first (free); the rest go out as requests over contiguous
   * runs of the batch, announced through q.onRequests before any is sent, each response's answers
   * stored (raw store, then q.onAnswers) before anything uses them.
   */
  async query(batch: ImageSet, q: QueryOptions = {}): Promise<OracleAnswer[]> {
    const px = batch.height * batch.width * 3;
    if (batch.images.length !== batch.n * px) throw new Error(`AdapterOracle.query: images has ${batch.images.length} bytes, expected n*h*w*3 = ${batch.n * px}`);
    if (batch.n === 0) return [];
    const stop = q.stop ?? this.opts.signal;
    const needScores = this.info.answer.mode !== 'label';
    const hashes = imageHashes(batch.images, batch.n, px);
    const results: (OracleAnswer | undefined)[] = new Array(batch.n);
    let answered = 0;
    const deliver = (start: number, answers: OracleAnswer[]): void => {
      answers.forEach((a, k) => (results[start + k] = a));
      answered += answers.length;
      q.onAnswers?.(start, answers);
    };
    // Runs of consecutive images to ask, and runs answered by the raw store.
    const runs: [number, number][] = [];
    for (let i = 0; i < batch.n; ) {
      const raw = this.store?.get(hashes[i]);
      const known = raw !== undefined && (!needScores || raw.scores !== undefined);
      let j = i + 1;
      const same = (k: number): boolean => {
        const r = this.store?.get(hashes[k]);
        return (r !== undefined && (!needScores || r.scores !== undefined)) === known;
      };
      while (j < batch.n && same(j)) j++;
      if (known) {
        this.counts.fromRawStore += j - i;
        deliver(i, hashes.slice(i, j).map((h) => this.toAnswer(this.store!.get(h)!)));
      } else runs.push([i, j - i]);
      i = j;
    }
    const toAsk = runs.reduce((t, [, c]) => t + c, 0);
    if (toAsk === 0) return results as OracleAnswer[];

    const size = Math.max(1, Math.min(this.perRequest, q.maxImagesPerRequest ?? Infinity));
    let unsettled = toAsk;
    const call: Call = {
      batch, hashes, q, stop,
      paid: (start, raws) => {
        // On disk before anything uses it: the raw store (mapping-independent), then the caller's cache.
        this.store?.append(raws.map((a, k) => ({ h: hashes[start + k], a })));
        this.meter.settle(raws.length, raws.length);
        unsettled -= raws.length;
        deliver(start, raws.map((r) => this.toAnswer(r)));
      },
    };
    const plans: PlannedRequest[] = [];
    for (const [s0, c] of runs) for (let s = s0; s < s0 + c; s += size) plans.push(this.plan(call, s, Math.min(size, s0 + c - s)));
    this.meter.reserve(toAsk);
    let failure: unknown;
    try {
      // Written ahead by the caller: a kill after this leaves a record of what may have been charged.
      q.onRequests?.(plans);
      const queue = [...plans];
      const worker = async (): Promise<void> => {
        while (failure === undefined && queue.length > 0 && !stop?.aborted) {
          const r = queue.shift()!;
          try {
            await this.runRequest(call, r);
          } catch (e) {
            failure ??= e;
          }
        }
      };
      const c = Math.max(1, this.opts.concurrency ?? this.spec.concurrency ?? 2);
      await Promise.all(Array.from({ length: Math.min(c, plans.length) }, worker));
      if (failure === undefined && answered < batch.n && stop?.aborted) {
        const e = new Error(`AdapterOracle.query stopped after ${answered} of ${batch.n} images (answers that arrived were delivered)`);
        e.name = 'AbortError';
        failure = e;
      }
    } catch (e) {
      failure ??= e;
    } finally {
      this.meter.settle(unsettled, 0);
    }
    if (failure !== undefined) {
      const err = failure instanceof Error ? failure : new Error(String(failure));
      err.message = this.redact(err.message);
      // Answers that arrived were paid: a caller without onAnswers gets them here (partialAnswersOf).
      if (answered > 0) (err as { partialAnswers?: unknown }).partialAnswers = results;
      throw err;
    }
    return results as OracleAnswer[];
  }

  private plan(call: Call, start: number, count: number): PlannedRequest {
    // Derived from the images (identity.ts), not random: a rerun after a kill sends the same key, and an
    // API that honours one replays what it charged instead of charging again.
    return { start, count, key: requestKey(call.hashes.slice(start, start + count), this.info.answer) };
  }

  /** Maps the API's answer onto the attack's classes; names the map leaves out become the UNMAPPED marker. */
  private toAnswer(raw: RawApiAnswer): OracleAnswer {
    const U = this.unmappedLabel;
    const C = this.spec.classes.length;
    const mapped = this.spec.classMap.get(normalizeClassName(raw.top));
    if (mapped === undefined) {
      this.counts.unmapped++;
      this.counts.unmappedNames[raw.top] = (this.counts.unmappedNames[raw.top] ?? 0) + 1;
    }
    const label = mapped ?? U;
    const mode = this.info.answer;
    if (mode.mode === 'label') return { label };
    if (mapped === undefined) {
      return mode.mode === 'topk' ? { label, topk: [{ label: U, p: 1 }] } : { label, probs: Array.from({ length: C + 1 }, (_, c) => (c === U ? 1 : 0)) };
    }
    // Several API classes can feed one attack class ("tabby", "Persian cat"): their scores add up. Mass
    // on unmapped names is no evidence for any attack class, so the rest is renormalised without it.
    const v = new Array<number>(C).fill(0);
    for (const [n, p] of Object.entries(raw.scores ?? {})) {
      const c = this.spec.classMap.get(normalizeClassName(n));
      if (c !== undefined && Number.isFinite(p) && p > 0) v[c] += p;
    }
    const sum = v.reduce((a, b) => a + b, 0);
    if (sum > 0) for (let c = 0; c < C; c++) v[c] /= sum;
    else v[label] = 1;
    if (mode.mode === 'topk') {
      const order = Array.from(v.keys()).sort((a, b) => v[b] - v[a] || a - b);
      return { label, topk: order.slice(0, Math.min(mode.k ?? 3, C)).map((c) => ({ label: c, p: v[c] })) };
    }
    return { label, probs: [...v, 0] };
  }

  private async encode(batch: ImageSet, i: number): Promise<Buffer> {
    const px = batch.height * batch.width * 3;
    const { format, width, height, quality, kernel } = this.spec.image;
    let img = sharp(Buffer.from(batch.images.buffer, batch.images.byteOffset + i * px, px), { raw: { width: batch.width, height: batch.height, channels: 3 } });
    // fit 'fill': the API gets the whole image stretched to its size, as the kit's own server does.
    if (width !== batch.width || height !== batch.height) img = img.resize(width, height, { fit: 'fill', kernel });
    if (format === 'jpeg') return img.jpeg({ quality, chromaSubsampling: quality >= 90 ? '4:4:4' : '4:2:0' }).toBuffer();
    if (format === 'webp') return img.webp({ quality }).toBuffer();
    return img.png().toBuffer();
  }

  private contentType(): string {
    return `image/${this.spec.image.format}`;
  }

  private async buildRequest(files: Buffer[]): Promise<{ body: string | Buffer | FormData; headers: Record<string, string> }> {
    const { request } = this.spec;
    const headers: Record<string, string> = { Accept: 'application/json', ...request.headers };
    if (this.spec.auth && this.key) headers[this.spec.auth.header] = `${this.spec.auth.prefix}${this.key}`;
    if (request.encoding === 'raw') {
      headers['Content-Type'] = this.contentType();
      return { body: files[0], headers };
    }
    if (request.encoding === 'multipart') {
      const form = new FormData();
      for (const [k, v] of Object.entries(request.fields)) form.append(k, v);
      form.append(request.field!, new Blob([files[0]], { type: this.contentType() }), `image.${this.spec.image.format === 'jpeg' ? 'jpg' : this.spec.image.format}`);
      return { body: form, headers }; // fetch sets the multipart boundary itself
    }
    const b64 = files.map((f) => (request.dataUrl ? `data:${this.contentType()};base64,` : '') + f.toString('base64'));
    const body = structuredClone(request.body ?? {}) as Record<string, unknown>;
    const [before, after] = request.imageField!.split('[]');
    if (!request.batch) setIn(body, before.split('.'), b64[0]);
    else {
      const rest = after.replace(/^\./, '');
      setIn(body, before.split('.'), b64.map((s) => {
        if (!rest) return s;
        const o: Record<string, unknown> = {};
        setIn(o, rest.split('.'), s);
        return o;
      }));
    }
    headers['Content-Type'] = 'application/json';
    return { body: JSON.stringify(body), headers };
  }

  /** The API's answers for `count` images from one 200 response. */
  private parseAnswers(json: unknown, count: number): RawApiAnswer[] {
    const { response } = this.spec;
    const names = response.classNames;
    const needScores = this.info.answer.mode !== 'label';
    const labels = response.label ? extract(json, parsePath(response.label), count, response.label) : undefined;
    const scores = response.scores && (needScores || !labels) ? extract(json, parsePath(response.scores), count, response.scores) : undefined;
    return Array.from({ length: count }, (_, i) => {
      const s = scores ? this.scoreMap(scores[i], `'${response.scores}' of image ${i}`) : undefined;
      let top: string;
      if (labels) {
        const l = labels[i];
        if (typeof l === 'string') top = l;
        else if (typeof l === 'number' && names && Number.isInteger(l) && l >= 0 && l < names.length) top = names[l];
        else throw new AdapterOracleError(`answer path '${response.label}' of image ${i}: expected a class name${names ? ` or an index into response.classNames (0..${names.length - 1})` : ' (a number needs response.classNames)'}, got ${describeValue(l)}`);
      } else {
        const entries = Object.entries(s!);
        if (entries.length === 0) throw new AdapterOracleError(`answer path '${response.scores}' of image ${i}: no scores`);
        top = entries.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
      }
      return needScores ? { top, scores: s } : { top };
    });
  }

  /** {name: score} from the shapes APIs use: an object, numbers in classNames order, or [{label, score}]. */
  private scoreMap(v: unknown, where: string): Record<string, number> {
    const { classNames, scoreName, scoreValue } = this.spec.response;
    const out: Record<string, number> = {};
    const num = (x: unknown, at: string): number => {
      if (typeof x !== 'number' || !Number.isFinite(x)) throw new AdapterOracleError(`${where}: ${at} is not a number (${describeValue(x)})`);
      return x;
    };
    if (Array.isArray(v)) {
      if (v.every((x) => typeof x === 'number')) {
        if (!classNames || classNames.length !== v.length) throw new AdapterOracleError(`${where}: an array of ${v.length} numbers needs response.classNames with ${v.length} names${classNames ? ` (it has ${classNames.length})` : ''}`);
        v.forEach((x, c) => (out[classNames[c]] = num(x, `[${c}]`)));
        return out;
      }
      v.forEach((e, k) => {
        if (typeof e !== 'object' || e === null) throw new AdapterOracleError(`${where}: entry ${k} is not an object like {"label": ..., "score": ...} (${describeValue(e)})`);
        const o = e as Record<string, unknown>;
        const nk = scoreName ?? ['label', 'name', 'class', 'className', 'description'].find((x) => typeof o[x] === 'string');
        const vk = scoreValue ?? ['score', 'p', 'probability', 'confidence', 'prob'].find((x) => typeof o[x] === 'number');
        if (!nk || typeof o[nk] !== 'string') throw new AdapterOracleError(`${where}: entry ${k} has no class name field${scoreName ? ` '${scoreName}'` : ' (label, name, class, description; or set response.scoreName)'}`);
        if (!vk) throw new AdapterOracleError(`${where}: entry ${k} has no score field (score, p, probability, confidence; or set response.scoreValue)`);
        out[o[nk] as string] = num(o[vk], `entry ${k}.${vk}`);
      });
      return out;
    }
    if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) out[k] = num(x, `'${k}'`);
      return out;
    }
    throw new AdapterOracleError(`${where}: expected {name: score}, an array of scores or an array of {label, score}, got ${describeValue(v)}`);
  }

  /**
   * One request with retries (same key throughout): 5xx, 408, timeouts and connection errors back off,
   * 429 waits Retry-After, 413 splits the request, other 4xx fail. `call.paid` gets the answers as soon
   * as they arrive.
   */
  private async runRequest(call: Call, r: PlannedRequest): Promise<void> {
    const { batch, stop } = call;
    const { start, count, key } = r;
    const files = await Promise.all(Array.from({ length: count }, (_, k) => this.encode(batch, start + k)));
    const idem = this.spec.request.idempotencyHeader;
    const maxRetries = this.opts.maxRetries ?? this.spec.maxRetries ?? 6;
    const maxWaits = this.opts.maxThrottleWaits ?? 100;
    const timeoutMs = this.opts.timeoutMs ?? this.spec.timeoutMs ?? 30_000;
    const base = this.opts.backoffMs ?? 250;
    const cap = this.opts.maxBackoffMs ?? 30_000;
    const where = `${this.spec.method} ${this.spec.url}`;
    let retries = 0;
    let waits = 0;
    for (;;) {
      if (stop?.aborted) throw stop.reason ?? new Error('aborted');
      if (this.bucket) await this.bucket.acquire(count, stop);
      const { body, headers } = await this.buildRequest(files);
      if (idem) headers[idem] = key;
      let transient: string;
      try {
        // Not the stop signal: a request already sent may be charged, so a stop lets it finish.
        const res = await fetch(this.spec.url, { method: this.spec.method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
        const text = await res.text();
        const what = `${where} answered ${res.status}: ${this.redact(text.slice(0, 300))}`;
        if (res.status >= 200 && res.status < 300) {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          if (json === undefined) {
            // Retrying may pay again unless the API replays on an idempotency key.
            if (!idem) throw new AdapterOracleError(`${what} (not JSON; not retried, it may have been charged: set request.idempotencyHeader if the API supports one)`);
            transient = `${what} (not JSON)`;
          } else {
            let raws: RawApiAnswer[];
            try {
              raws = this.parseAnswers(json, count);
            } catch (e) {
              throw new AdapterOracleError(`adapter file ${this.spec.file}: ${(e as Error).message}; the response was: ${this.redact(text.slice(0, 300))}`);
            }
            call.paid(start, raws);
            return;
          }
        } else if (res.status === 429) {
          this.meter.throttled += 1;
          if (++waits > maxWaits) throw new AdapterOracleError(`${what}; gave up after ${maxWaits} waits`);
          const secs = retryAfterSeconds(res.headers.get('retry-after'));
          // A little jitter so concurrent workers do not all come back in the same millisecond.
          await sleep((secs !== undefined ? secs * 1000 : backoffDelay(waits, base, cap, this.random)) + this.random() * 100, stop);
          continue;
        } else if (res.status === 413 && count > 1) {
          // The API did not say how many fit: halve until it accepts. The halves are new requests, so
          // they are announced (written ahead) like the first ones.
          const half = Math.ceil(count / 2);
          this.perRequest = Math.min(this.perRequest, half);
          const parts = [this.plan(call, start, half), this.plan(call, start + half, count - half)];
          call.q.onRequests?.(parts);
          for (const p of parts) await this.runRequest(call, p);
          return;
        } else if (res.status >= 500 || res.status === 408) {
          transient = what;
        } else {
          throw new AdapterOracleError(what);
        }
      } catch (e) {
        if (e instanceof AdapterOracleError || e instanceof QueryBudgetExceeded) throw e;
        if (stop?.aborted) throw stop.reason ?? e;
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        transient = `${where}: ${(e as Error).name === 'TimeoutError' ? `timeout after ${timeoutMs} ms` : (e as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
      }
      this.meter.failedAttempts += 1;
      if (++retries > maxRetries) throw new Error(this.redact(`adapter ${this.spec.name}: giving up after ${maxRetries} retries: ${transient}`));
      await sleep(backoffDelay(retries, base, cap, this.random), stop);
    }
  }
}

/** One query() call, as its requests see it. */
interface Call {
  batch: ImageSet;
  hashes: string[];
  q: QueryOptions;
  stop?: AbortSignal;
  paid: (start: number, raws: RawApiAnswer[]) => void;
}
