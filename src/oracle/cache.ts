import * as fs from 'fs';
import * as path from 'path';
import { normalizeAnswerSpec, validateAnswer } from './answers';
import type { AnswerSpec, OracleAnswer, OracleInfo } from './types';

export { imageHash, imageHashes } from './identity';

/**
 * The query cache: every answer ever paid for, keyed by the SHA-1 of the image's RGB bytes, in an
 * append-only JSON-lines file. Answers are appended and fsync'ed as each response arrives (labelImages
 * calls append from the oracle's onAnswers hook), so a kill loses no answer that was used; a torn last
 * line (killed mid-write) is dropped on the next open. Keying by content means an image is asked once
 * even when it appears twice, in two sets, or in a re-run.
 *
 * Line 1 is a header naming the oracle (its identity digest, see identity.ts) and answer mode: answers of
 * another oracle or mode must never be mixed into a training set, so opening with a different one is an
 * error. Other lines are records:
 *   {"h": sha1, "a": answer}   an answer (paid)
 *   {"budget": n | null}       the budget in images from here on (null: none); it holds across reruns
 *   {"identity": digest}       a cache written before identities existed, bound to its oracle's identity
 *
 * Requests about to be sent are written ahead to a sidecar, `<file>.requests` (one line each:
 * {"key": idempotency key, "h": [sha1 of each image, in request order]}), fsync'ed before the request
 * goes out. A request whose answers are not all in the cache is pending: it may have been charged, so
 * labelImages resends exactly it (same images, same order, same key) and a server that honours keys
 * replays it for free. The sidecar is deleted once nothing is pending.
 *
 * Test hook: COPYCAT_TEST_CACHE_WRITE_PAUSE_MS=<ms> writes every record in two halves with a pause after
 * each, so a test that kills the process lands inside writes (test/oracleKill.test.ts). Never set it in use.
 */

export const CACHE_FORMAT = 'copycat-query-cache';

export interface CacheHeader {
  format: typeof CACHE_FORMAT;
  version: 1;
  created: string;
  oracle: { name: string; kind: string; answer: AnswerSpec; numClasses: number; transforms?: string[]; identity?: string };
  image: { height: number; width: number };
}

/** A request written ahead of sending it. */
export interface RecordedRequest {
  key: string;
  hashes: string[];
}

export interface OpenCacheOptions {
  /**
   * fsync every write (default true): an answer or a request written ahead is then on disk, not only in
   * the OS's cache, before it is used or sent, so even a power cut cannot make a rerun pay twice.
   */
  fsync?: boolean;
  /**
   * Names under which caches of this same oracle were written before oracles had identities (the
   * header's `oracle.name`). Such a cache opens when its name is `info.name` or one of these, and its
   * answer mode, classes, transforms and image size match; it is then bound to `info.identity`.
   */
  sameOracleNames?: readonly string[];
}

const HASH = /^[0-9a-f]{40}$/;

/** Pause (test hook, see the file comment) between the halves of every record written. */
function writePauseMs(): number {
  const v = Number(process.env.COPYCAT_TEST_CACHE_WRITE_PAUSE_MS ?? 0);
  return Number.isFinite(v) && v > 0 ? v : 0;
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
}

/** Writes lines in one write (or, under the test hook, in halves with pauses), then fsyncs if asked. */
function writeLines(fd: number, lines: string[], fsync: boolean): void {
  const pause = writePauseMs();
  if (pause === 0) writeAll(fd, Buffer.from(lines.join(''), 'utf8'));
  else {
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (const line of lines) {
      const b = Buffer.from(line, 'utf8');
      const half = b.length >> 1;
      writeAll(fd, b.subarray(0, half));
      Atomics.wait(sleeper, 0, 0, pause);
      writeAll(fd, b.subarray(half));
      Atomics.wait(sleeper, 0, 0, pause);
    }
  }
  if (fsync) fs.fsyncSync(fd);
}

/**
 * Lines of a JSON-lines file, and the torn tail after the last newline (a write cut short), if any.
 */
function readLines(file: string): { text: string; lines: string[]; tail: string } {
  const text = fs.readFileSync(file, 'utf8');
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  return { text, lines, tail };
}

export class QueryCache {
  private readonly answers = new Map<string, OracleAnswer>();
  private fd: number;
  private requestsFd = -1;
  private readonly pending = new Map<string, string[]>();
  private budgetValue: number | undefined;
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

  /** The sidecar holding requests written ahead of sending (see the file comment). */
  static requestsFileOf(file: string): string {
    return `${file}.requests`;
  }

  /** Opens (or creates) the cache for `info`'s oracle and images of height x width. */
  static open(file: string, info: OracleInfo, image: { height: number; width: number }, opts: OpenCacheOptions = {}): QueryCache {
    const want: CacheHeader = {
      format: CACHE_FORMAT,
      version: 1,
      created: new Date().toISOString(),
      oracle: {
        name: info.name,
        kind: info.kind,
        answer: normalizeAnswerSpec(info.answer),
        numClasses: info.numClasses,
        transforms: info.transforms ?? [],
        ...(info.identity ? { identity: info.identity } : {}),
      },
      image: { height: image.height, width: image.width },
    };
    const fsync = opts.fsync ?? true;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    // A file without one complete line is a header write cut short: nothing was paid yet, start over.
    const exists = fs.existsSync(file) && fs.readFileSync(file).includes(10);
    let cache: QueryCache;
    if (!exists) {
      const fd = fs.openSync(file, 'w');
      writeLines(fd, [JSON.stringify(want) + '\n'], true);
      cache = new QueryCache(file, want, fd, 0, fsync);
    } else {
      cache = QueryCache.load(file, want, image, opts, fsync);
    }
    cache.loadRequests();
    return cache;
  }

  private static load(file: string, want: CacheHeader, image: { height: number; width: number }, opts: OpenCacheOptions, fsync: boolean): QueryCache {
    const { text, lines, tail } = readLines(file);
    let header: CacheHeader;
    try {
      header = JSON.parse(lines[0] ?? '');
    } catch {
      throw new Error(`query cache ${file}: line 1 is not a JSON header; not a ${CACHE_FORMAT} file (or its first write was cut short: delete it)`);
    }
    if (header?.format !== CACHE_FORMAT || header.version !== 1) {
      throw new Error(`query cache ${file}: header has format=${JSON.stringify(header?.format)} version=${JSON.stringify(header?.version)}, expected ${CACHE_FORMAT} version 1`);
    }
    const o = header.oracle ?? ({} as CacheHeader['oracle']);
    const cache = new QueryCache(file, header, -1, tail.length > 0 ? 1 : 0, fsync);
    const identities = new Set<string>(o.identity ? [o.identity] : []);
    const record = (line: string, where: string): void => {
      let rec: { h?: unknown; a?: unknown; budget?: unknown; identity?: unknown };
      try {
        rec = JSON.parse(line);
      } catch (e) {
        throw new Error(`query cache ${file}: ${where} is not valid JSON (${(e as Error).message}); only the last line may be torn, this file is damaged`);
      }
      if (rec && typeof rec === 'object' && 'budget' in rec) {
        if (rec.budget !== null && !(Number.isInteger(rec.budget) && (rec.budget as number) >= 0)) throw new Error(`query cache ${file}: ${where}: 'budget' must be an integer >= 0 or null`);
        cache.budgetValue = rec.budget === null ? undefined : (rec.budget as number);
        return;
      }
      if (rec && typeof rec === 'object' && 'identity' in rec) {
        if (typeof rec.identity !== 'string') throw new Error(`query cache ${file}: ${where}: 'identity' must be a string`);
        identities.add(rec.identity);
        return;
      }
      if (typeof rec?.h !== 'string' || !HASH.test(rec.h)) throw new Error(`query cache ${file}: ${where} has no 'h' (40-hex SHA-1)`);
      cache.answers.set(rec.h, validateAnswer(rec.a, o.answer, o.numClasses, `query cache ${file} ${where}`));
    };
    for (let i = 1; i < lines.length; i++) if (lines[i] !== '') record(lines[i], `line ${i + 1}`);

    const mismatch: string[] = [];
    let adopt = false;
    const w = want.oracle;
    if (w.identity && identities.size > 0) {
      if (!identities.has(w.identity)) mismatch.push(`oracle identity ${[...identities].join('/')} vs ${w.identity} (oracle '${o.name}' vs '${w.name}')`);
    } else if (o.name !== w.name && !(opts.sameOracleNames ?? []).includes(o.name)) {
      mismatch.push(`oracle name '${o.name}' vs '${w.name}'`);
    } else if (w.identity) {
      // Written before identities existed, and the caller says it is this oracle: bind it, so the
      // next open finds it by identity whatever the oracle is named then.
      adopt = true;
    }
    if (JSON.stringify(normalizeAnswerSpec(o.answer)) !== JSON.stringify(w.answer)) mismatch.push(`answer mode ${JSON.stringify(o.answer)} vs ${JSON.stringify(w.answer)}`);
    if (o.numClasses !== w.numClasses) mismatch.push(`numClasses ${o.numClasses} vs ${w.numClasses}`);
    if (JSON.stringify(o.transforms ?? []) !== JSON.stringify(w.transforms)) mismatch.push(`transforms ${JSON.stringify(o.transforms ?? [])} vs ${JSON.stringify(w.transforms)}`);
    if (header.image?.height !== image.height || header.image?.width !== image.width) {
      mismatch.push(`image size ${header.image?.height}x${header.image?.width} vs ${image.height}x${image.width}`);
    }
    if (mismatch.length) {
      throw new Error(`query cache ${file} belongs to another oracle setting (${mismatch.join('; ')}); use another cache file so answers are not mixed`);
    }

    cache.fd = fs.openSync(file, 'a');
    if (tail.length > 0) {
      // A kill between the last byte of a record and its newline leaves a whole record: keep it (it
      // was paid for). Anything else is cut off so the next append starts on a fresh line.
      let kept = false;
      try {
        record(tail, 'last line');
        kept = true;
      } catch {
        kept = false;
      }
      if (kept) {
        writeLines(cache.fd, ['\n'], fsync);
        cache.tornLinesDropped = 0;
      } else {
        fs.ftruncateSync(cache.fd, Buffer.byteLength(text) - Buffer.byteLength(tail));
      }
    }
    if (adopt) writeLines(cache.fd, [JSON.stringify({ identity: w.identity }) + '\n'], fsync);
    return cache;
  }

  /** Reads the requests sidecar: requests not fully answered stay pending; a torn last line is cut off. */
  private loadRequests(): void {
    const side = QueryCache.requestsFileOf(this.file);
    if (!fs.existsSync(side)) return;
    const { text, lines, tail } = readLines(side);
    lines.forEach((line, i) => {
      if (line === '') return;
      let rec: { key?: unknown; h?: unknown };
      try {
        rec = JSON.parse(line);
      } catch (e) {
        throw new Error(`query cache ${side}: line ${i + 1} is not valid JSON (${(e as Error).message}); only the last line may be torn, this file is damaged`);
      }
      if (typeof rec.key !== 'string' || !Array.isArray(rec.h) || !rec.h.every((x) => typeof x === 'string' && HASH.test(x))) {
        throw new Error(`query cache ${side}: line ${i + 1} is not {"key": string, "h": [40-hex SHA-1...]}`);
      }
      this.pending.set(rec.key, rec.h as string[]);
    });
    this.dropAnswered();
    if (this.pending.size === 0) {
      fs.rmSync(side, { force: true });
      return;
    }
    // A torn tail is a request written only in part, so never sent: cut it off.
    this.requestsFd = fs.openSync(side, 'a');
    if (tail.length > 0) fs.ftruncateSync(this.requestsFd, Buffer.byteLength(text) - Buffer.byteLength(tail));
  }

  private dropAnswered(): void {
    for (const [key, hashes] of this.pending) if (hashes.every((h) => this.answers.has(h))) this.pending.delete(key);
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

  /** The budget in images recorded with this cache (the latest setBudget of any run), if any. */
  get budget(): number | undefined {
    return this.budgetValue;
  }

  /** Records the budget (undefined: none) when it differs from the recorded one. */
  setBudget(budget: number | undefined): void {
    if (budget !== undefined && !(Number.isInteger(budget) && budget >= 0)) throw new Error(`query cache budget must be an integer >= 0 images, got ${budget}`);
    if (budget === this.budgetValue) return;
    this.assertOpen();
    writeLines(this.fd, [JSON.stringify({ budget: budget ?? null }) + '\n'], this.fsync);
    this.budgetValue = budget;
  }

  /** Requests written ahead whose answers are not all here (they may have been charged). */
  pendingRequests(): RecordedRequest[] {
    return [...this.pending].map(([key, hashes]) => ({ key, hashes: [...hashes] }));
  }

  /** Distinct images of pending requests without an answer yet: possibly charged, so counted as spent. */
  pendingImages(): number {
    const s = new Set<string>();
    for (const hashes of this.pending.values()) for (const h of hashes) if (!this.answers.has(h)) s.add(h);
    return s.size;
  }

  /** Writes requests ahead of sending them, in one write, fsync'ed (see the file comment). */
  recordRequests(requests: RecordedRequest[]): void {
    this.assertOpen();
    const fresh = requests.filter((r) => !this.pending.has(r.key) && !r.hashes.every((h) => this.answers.has(h)));
    if (fresh.length === 0) return;
    if (this.requestsFd < 0) this.requestsFd = fs.openSync(QueryCache.requestsFileOf(this.file), 'a');
    writeLines(this.requestsFd, fresh.map((r) => JSON.stringify({ key: r.key, h: r.hashes }) + '\n'), this.fsync);
    for (const r of fresh) this.pending.set(r.key, [...r.hashes]);
  }

  /** Appends answers (one line each) in one write, then fsyncs. Already-known hashes are skipped. Returns how many were new. */
  append(entries: { hash: string; answer: OracleAnswer }[]): number {
    this.assertOpen();
    const fresh = new Map<string, OracleAnswer>();
    for (const { hash, answer } of entries) if (!this.answers.has(hash) && !fresh.has(hash)) fresh.set(hash, answer);
    if (fresh.size === 0) return 0;
    writeLines(this.fd, [...fresh].map(([h, a]) => JSON.stringify({ h, a }) + '\n'), this.fsync);
    for (const [h, a] of fresh) this.answers.set(h, a);
    if (this.pending.size > 0) this.dropAnswered();
    return fresh.size;
  }

  /** Closes the files; the requests sidecar is deleted when no request is pending. */
  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    if (this.requestsFd >= 0) fs.closeSync(this.requestsFd);
    this.requestsFd = -1;
    if (this.pending.size === 0) fs.rmSync(QueryCache.requestsFileOf(this.file), { force: true });
  }

  private assertOpen(): void {
    if (this.fd < 0) throw new Error(`query cache ${this.file} is closed`);
  }
}
