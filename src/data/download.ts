import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

export type HashAlgorithm = 'md5' | 'sha256';

export interface DownloadOptions {
  /** Expected digest (hex) of the complete file; a mismatch deletes the file and retries once. */
  md5?: string;
  sha256?: string;
  /** Expected size in bytes, when known (checked before hashing). */
  bytes?: number;
  /** Called with bytes done / total (total 0 when the server does not say). */
  onProgress?: (done: number, total: number) => void;
  /** Give up on a connection that sends nothing for this long (ms); default 30 s. */
  idleTimeoutMs?: number;
  /** Connection attempt timeout (ms); default 10 s, so unreachable hosts fail fast. */
  connectTimeoutMs?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** Hex digest of a file, streamed (the archives are hundreds of MB). */
export async function fileDigest(file: string, algorithm: HashAlgorithm): Promise<string> {
  const h = crypto.createHash(algorithm);
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file, { highWaterMark: 1 << 22 })
      .on('data', (c) => h.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
  return h.digest('hex');
}

/**
 * Checks size and digest of an existing file. Returns null when it matches, else a message naming the
 * file, what was expected and what was found.
 */
export async function verifyFile(file: string, expect: Pick<DownloadOptions, 'md5' | 'sha256' | 'bytes'>): Promise<string | null> {
  if (!fs.existsSync(file)) return `${file}: missing`;
  const size = fs.statSync(file).size;
  if (expect.bytes != null && size !== expect.bytes) return `${file}: expected ${expect.bytes} bytes, found ${size}`;
  for (const alg of ['md5', 'sha256'] as const) {
    const want = expect[alg];
    if (!want) continue;
    const got = await fileDigest(file, alg);
    if (got !== want.toLowerCase()) return `${file}: ${alg} mismatch: expected ${want}, got ${got}`;
  }
  return null;
}

/**
 * Downloads `url` to `dest` through `dest.part`, resuming a previous partial download with an HTTP
 * Range request. The final name appears only after the size and checksum match, so a later run never
 * trusts a half file. A checksum mismatch deletes the bad file and downloads once more, then fails.
 */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<string> {
  const log = opts.log ?? (() => undefined);
  if (fs.existsSync(dest)) {
    const problem = await verifyFile(dest, opts);
    if (!problem) return dest;
    log(`${problem}; downloading again`);
    fs.rmSync(dest);
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const part = dest + '.part';
  for (let attempt = 1; attempt <= 2; attempt++) {
    await fetchToPart(url, part, opts);
    const problem = await verifyFile(part, opts);
    if (!problem) {
      fs.renameSync(part, dest);
      return dest;
    }
    fs.rmSync(part, { force: true });
    if (attempt === 2) throw new Error(`download ${url}: ${problem.replace(part, dest)} (after a fresh re-download)`);
    log(`${problem.replace(part, dest)}; deleted, downloading again`);
  }
  return dest;
}

async function fetchToPart(url: string, part: string, opts: DownloadOptions): Promise<void> {
  const have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  const ctrl = new AbortController();
  const onAbort = () => ctrl.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort);
  let timer = setTimeout(() => ctrl.abort(new Error('connect timeout')), opts.connectTimeoutMs ?? 10_000);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => ctrl.abort(new Error('idle timeout')), opts.idleTimeoutMs ?? 30_000);
  };
  try {
    let res: Response;
    try {
      res = await fetch(url, { headers: have ? { Range: `bytes=${have}-` } : {}, signal: ctrl.signal, redirect: 'follow' });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`download ${url}: cannot connect (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
    // 206: the server resumes where we stopped; 200: it ignored Range, so start over.
    const resumed = res.status === 206 && have > 0;
    if (res.status === 416 && have > 0) return; // already complete: the checksum decides
    if (!res.ok) throw new Error(`download ${url}: HTTP ${res.status} ${res.statusText}`);
    if (!res.body) throw new Error(`download ${url}: empty response body`);
    const length = Number(res.headers.get('content-length') ?? 0);
    const total = resumed ? have + length : length;
    let done = resumed ? have : 0;
    const out = fs.createWriteStream(part, { flags: resumed ? 'a' : 'w' });
    // Say where a resumed download starts before its first chunk, so progress counts the rate from there.
    if (resumed) opts.onProgress?.(done, total);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        rearm();
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        done += chunk.length;
        opts.onProgress?.(done, total);
      }
    } finally {
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
