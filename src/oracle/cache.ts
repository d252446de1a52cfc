import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { normalizeAnswerSpec, validateAnswer } from './answers';
import type { AnswerSpec, OracleAnswer, OracleInfo } from './types';

/**
 * The query cache: every answer ever paid for, keyed by the SHA-1 of the image's RGB bytes, in an
 * append-only JSON-lines file. One line per answer, flushed (and fsync'ed) per batch, so a kill loses at
 * most the batch in flight; a torn last line (killed mid-write) is dropped on the next open. Keying by
 * content means an image is asked once even when it appears twice, in two sets, or in a re-run.
 *
 * Line 1 is a header naming the oracle and answer mode: answers of another oracle or mode must never be
 * mixed into a training set, so opening with a different one is an error.
 */

export const CACHE_FORMAT = 'copycat-query-cache';

export interface CacheHeader {
  format: typeof CACHE_FORMAT;
  version: 1;
  created: string;
  oracle: { name: string; kind: string; answer: AnswerSpec; numClasses: number; transforms?: string[] };
  image: { height: number; width: number };
}

/** SHA-1 (hex) of image `i`'s RGB bytes in an NHWC uint8 array of images of `pixelBytes` bytes each. */
export function imageHash(images: Uint8Array, i: number, pixelBytes: number): string {
  return crypto.createHash('sha1').update(images.subarray(i * pixelBytes, (i + 1) * pixelBytes)).digest('hex');
}

export function imageHashes(images: Uint8Array, n: number, pixelBytes: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = imageHash(images, i, pixelBytes);
  return out;
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

export interface OpenCacheOptions {
  /** fsync after every append (default true): a power cut then loses at most the batch in flight. */
  fsync?: boolean;
}

export class QueryCache {
  private readonly answers = new Map<string, OracleAnswer>();
  private fd: number;
  /** Lines dropped as torn when the file was opened (0 or 1). */
  tornLinesDropped: number;

  private constructor(
    readonly file: string,
    readonly header: CacheHeader,
    fd: number,
    torn: number,
    private readonly fsync: boolean,
  ) {
    this.fd = fd;
    this.tornLinesDropped = torn;
  }

  /** Opens (or creates) the cache for `info`'s oracle and images of height x width. */
  static open(file: string, info: OracleInfo, image: { height: number; width: number }, opts: OpenCacheOptions = {}): QueryCache {
    const want: CacheHeader = {
      format: CACHE_FORMAT,
      version: 1,
      created: new Date().toISOString(),
      oracle: { name: info.name, kind: info.kind, answer: normalizeAnswerSpec(info.answer), numClasses: info.numClasses, transforms: info.transforms ?? [] },
      image: { height: image.height, width: image.width },
    };
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    // A file without one complete line is a header write cut short: nothing was paid yet, start over.
    const exists = fs.existsSync(file) && fs.readFileSync(file).includes(10);
    if (!exists) {
      const fd = fs.openSync(file, 'w');
      fs.writeSync(fd, JSON.stringify(want) + '\n');
      fs.fsyncSync(fd);
      return new QueryCache(file, want, fd, 0, opts.fsync ?? true);
    }
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    // After the last '\n' there is either nothing or a line whose write was cut short.
    const tail = lines.pop() ?? '';
    const torn = tail.length > 0 ? 1 : 0;
    let header: CacheHeader;
    try {
      header = JSON.parse(lines[0] ?? '');
    } catch {
      throw new Error(`query cache ${file}: line 1 is not a JSON header; not a ${CACHE_FORMAT} file (or its first write was cut short: delete it)`);
    }
    if (header?.format !== CACHE_FORMAT || header.version !== 1) {
      throw new Error(`query cache ${file}: header has format=${JSON.stringify(header?.format)} version=${JSON.stringify(header?.version)}, expected ${CACHE_FORMAT} version 1`);
    }
    const mismatch: string[] = [];
    const o = header.oracle ?? ({} as CacheHeader['oracle']);
    if (o.name !== want.oracle.name) mismatch.push(`oracle name '${o.name}' vs '${want.oracle.name}'`);
    if (JSON.stringify(normalizeAnswerSpec(o.answer)) !== JSON.stringify(want.oracle.answer)) {
      mismatch.push(`answer mode ${JSON.stringify(o.answer)} vs ${JSON.stringify(want.oracle.answer)}`);
    }
    if (o.numClasses !== want.oracle.numClasses) mismatch.push(`numClasses ${o.numClasses} vs ${want.oracle.numClasses}`);
    if (JSON.stringify(o.transforms ?? []) !== JSON.stringify(want.oracle.transforms)) {
      mismatch.push(`transforms ${JSON.stringify(o.transforms ?? [])} vs ${JSON.stringify(want.oracle.transforms)}`);
    }
    if (header.image?.height !== image.height || header.image?.width !== image.width) {
      mismatch.push(`image size ${header.image?.height}x${header.image?.width} vs ${image.height}x${image.width}`);
    }
    if (mismatch.length) {
      throw new Error(`query cache ${file} belongs to another oracle setting (${mismatch.join('; ')}); use another cache file so answers are not mixed`);
    }
    const cache = new QueryCache(file, header, -1, torn, opts.fsync ?? true);
    for (let i = 1; i < lines.length; i++) {
      if (lines[i] === '') continue;
      let rec: { h?: unknown; a?: unknown };
      try {
        rec = JSON.parse(lines[i]);
      } catch (e) {
        throw new Error(`query cache ${file}: line ${i + 1} is not valid JSON (${(e as Error).message}); only the last line may be torn, this file is damaged`);
      }
      if (typeof rec.h !== 'string' || !/^[0-9a-f]{40}$/.test(rec.h)) throw new Error(`query cache ${file}: line ${i + 1} has no 'h' (40-hex SHA-1)`);
      cache.answers.set(rec.h, validateAnswer(rec.a, o.answer, o.numClasses, `query cache ${file} line ${i + 1}`));
    }
    cache.fd = fs.openSync(file, 'a');
    if (torn) {
      // A kill between the last byte of a record and its newline leaves a whole record: keep it (it
      // was paid for). Anything else is cut off so the next append starts on a fresh line.
      let rec: { h?: unknown; a?: unknown } | undefined;
      try {
        rec = JSON.parse(tail);
        validateAnswer(rec?.a, o.answer, o.numClasses, 'torn line');
      } catch {
        rec = undefined;
      }
      if (rec && typeof rec.h === 'string' && /^[0-9a-f]{40}$/.test(rec.h)) {
        cache.answers.set(rec.h, rec.a as OracleAnswer);
        writeAll(cache.fd, '\n');
        cache.tornLinesDropped = 0;
      } else {
        fs.ftruncateSync(cache.fd, Buffer.byteLength(text) - Buffer.byteLength(tail));
      }
    }
    return cache;
  }

  get size(): number {
    return this.answers.size;
  }

  get(hash: string): OracleAnswer | undefined {
    return this.answers.get(hash);
  }

  has(hash: string): boolean {
    return this.answers.has(hash);
  }

  /** Appends answers (one line each) in one write, then fsyncs. Already-known hashes are skipped. */
  append(entries: { hash: string; answer: OracleAnswer }[]): void {
    if (this.fd < 0) throw new Error(`query cache ${this.file} is closed`);
    let text = '';
    for (const { hash, answer } of entries) {
      if (this.answers.has(hash)) continue;
      this.answers.set(hash, answer);
      text += JSON.stringify({ h: hash, a: answer }) + '\n';
    }
    if (!text) return;
    writeAll(this.fd, text);
    if (this.fsync) fs.fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
