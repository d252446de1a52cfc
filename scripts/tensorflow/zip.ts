/**
 * Random access to a wheel (a zip file) with yauzl: the central directory is read once, then single
 * entries are streamed on demand, so a 270 MB wheel is never unpacked whole.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Transform } from 'stream';
import { pipeline } from 'stream/promises';
import * as yauzl from 'yauzl';

export interface ZipArchive {
  readonly file: string;
  readonly entries: ReadonlyMap<string, yauzl.Entry>;
  readText(name: string): Promise<string>;
  /**
   * Streams one entry to `dest` via a temporary file, so an interrupted run never leaves a half file.
   * Returns the content's sha256 in the wheel RECORD's encoding (urlsafe base64, no padding), because
   * yauzl checks sizes but not CRC32: the RECORD comparison is what catches a corrupt wheel.
   */
  extractTo(name: string, dest: string): Promise<string>;
  close(): void;
}

export async function openZip(file: string): Promise<ZipArchive> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false }, (err, z) => (err || !z ? reject(err) : resolve(z))),
  ).catch((err: Error) => {
    throw new Error(`${file} is not a readable zip/wheel (corrupt or truncated download?): ${err.message}`);
  });
  const entries = new Map<string, yauzl.Entry>();
  await new Promise<void>((resolve, reject) => {
    zip.on('entry', (e: yauzl.Entry) => {
      entries.set(e.fileName, e);
      zip.readEntry();
    });
    zip.on('end', () => resolve());
    zip.on('error', (err: Error) => reject(new Error(`${file}: broken zip directory: ${err.message}`)));
    zip.readEntry();
  });

  const open = (name: string): Promise<NodeJS.ReadableStream> => {
    const entry = entries.get(name);
    if (!entry) return Promise.reject(new Error(`${file} has no entry ${name}`));
    return new Promise((resolve, reject) =>
      zip.openReadStream(entry, (err, s) => (err || !s ? reject(new Error(`${file}: cannot read ${name}: ${err?.message}`)) : resolve(s))),
    );
  };

  return {
    file,
    entries,
    async readText(name) {
      const chunks: Buffer[] = [];
      const s = await open(name);
      for await (const c of s) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    async extractTo(name, dest) {
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.part-${process.pid}`;
      try {
        const hash = crypto.createHash('sha256');
        const tap = new Transform({
          transform(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            done(null, chunk);
          },
        });
        await pipeline(await open(name), tap, fs.createWriteStream(tmp));
        fs.renameSync(tmp, dest);
        return recordDigest(hash);
      } catch (err) {
        fs.rmSync(tmp, { force: true });
        throw new Error(`${file}: extracting ${name} failed (corrupt wheel?): ${(err as Error).message}`);
      }
    },
    close() {
      zip.close();
    },
  };
}

/** sha256 as wheel RECORD files write it (PEP 376/427): urlsafe base64 without '=' padding. */
export function recordDigest(hash: crypto.Hash): string {
  return hash.digest('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
