import * as crypto from 'crypto';
import { canonicalJson } from '../canonicalJson';
import { formatAnswerSpec, normalizeAnswerSpec } from './answers';
import type { AnswerSpec } from './types';

/**
 * Digests that name things independently of how they were reached: an image (its RGB bytes), a
 * request (its images and answer mode: the Idempotency-Key) and an oracle (its weights or URL, and its
 * answer settings: the query cache's key). Plain crypto, no tf, so the HTTP client and the cache can
 * use them without loading a model runtime.
 */

/** SHA-1 (hex) of image `i`'s RGB bytes in an NHWC uint8 array of images of `pixelBytes` bytes each. */
export function imageHash(images: Uint8Array, i: number, pixelBytes: number): string {
  return crypto.createHash('sha1').update(images.subarray(i * pixelBytes, (i + 1) * pixelBytes)).digest('hex');
}

export function imageHashes(images: Uint8Array, n: number, pixelBytes: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = imageHash(images, i, pixelBytes);
  return out;
}

/** Version tag of the key derivation: a change of recipe must not collide with keys a server remembers. */
const REQUEST_KEY_PREFIX = 'cc1-';

/**
 * The Idempotency-Key of a request carrying these images (SHA-1 of each image's RGB bytes, in request
 * order) in this answer mode. The same request gets the same key in every process, so a rerun after a
 * kill, or a retry after a timeout, asks the server to replay what it charged instead of charging again.
 */
export function requestKey(hashes: readonly string[], answer: AnswerSpec | string): string {
  const h = crypto.createHash('sha256');
  h.update(`copycat-request\n${formatAnswerSpec(normalizeAnswerSpec(answer))}\n${hashes.length}\n`);
  for (const x of hashes) h.update(`${x}\n`);
  return REQUEST_KEY_PREFIX + h.digest('hex');
}

/** Settings that change what an oracle answers, beyond which model or endpoint answers. */
export interface AnswerSettings {
  answer: AnswerSpec | string;
  numClasses: number;
  transforms?: readonly string[];
  input: { height: number; width: number };
}

function settingsPart(s: AnswerSettings): unknown {
  return { answer: normalizeAnswerSpec(s.answer), numClasses: s.numClasses, transforms: [...(s.transforms ?? [])], input: { height: s.input.height, width: s.input.width } };
}

/** `sha256:<hex>` of a JSON value with its object keys sorted (so key order never changes a digest). */
export function digestOf(value: unknown): string {
  return `sha256:${crypto.createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
}

/** Identity of a model (digest of its architecture and weights, see local.ts) answering with `settings`. */
export function modelIdentity(weightsDigest: string, settings: AnswerSettings): string {
  return digestOf({ kind: 'model', weights: weightsDigest, ...(settingsPart(settings) as object) });
}

/**
 * Identity of a server that does not state one: its normalised base URL and answer settings. Never a
 * file path: a remote oracle is whoever answers at that URL.
 */
export function remoteIdentity(url: string, settings: AnswerSettings): string {
  let base = url.replace(/\/+$/, '');
  try {
    const u = new URL(base);
    base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    // Not a URL the WHATWG parser accepts: the string as given is still a stable name.
  }
  return digestOf({ kind: 'remote', url: base, ...(settingsPart(settings) as object) });
}

/** The first hex digits of an identity, for names and logs. */
export function shortIdentity(identity: string): string {
  return identity.replace(/^sha256:/, '').slice(0, 12);
}
