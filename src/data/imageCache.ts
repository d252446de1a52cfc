import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Decoded uint8 images on disk: "CPCTIMG1" | uint32 LE header length | header JSON | pixels (n*h*w*3).
 * The header carries the cache key, the ids, any extra metadata and the sha256 of the pixels, so a file
 * cut short or damaged is noticed (length and digest) and rebuilt rather than trusted.
 */
const MAGIC = Buffer.from('CPCTIMG1', 'ascii');

export interface CachedImages<M> {
  images: Uint8Array;
  n: number;
  height: number;
  width: number;
  ids: string[];
  meta: M;
}

interface Header<M> {
  version: 1;
  key: string;
  n: number;
  height: number;
  width: number;
  ids: string[];
  sha256: string;
  meta: M;
}

/** sha256 (hex) of a canonical key object: the cache file name part. */
export function cacheKeyHash(key: unknown): string {
  return crypto.createHash('sha256').update(JSON.stringify(key)).digest('hex');
}

/** Writes the cache atomically: a temp file in the same folder, then a rename. */
export function writeImageCache<M>(file: string, key: string, set: Omit<CachedImages<M>, 'meta'>, meta: M): void {
  const bytes = set.n * set.height * set.width * 3;
  if (set.images.length !== bytes) throw new Error(`writeImageCache: ${set.images.length} pixel bytes for ${set.n} images of ${set.height}x${set.width}x3`);
  const header: Header<M> = {
    version: 1, key, n: set.n, height: set.height, width: set.width, ids: set.ids,
    sha256: crypto.createHash('sha256').update(set.images).digest('hex'), meta,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const part of [MAGIC, len, json, set.images]) {
        let off = 0;
        while (off < part.length) off += fs.writeSync(fd, part, off, part.length - off);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Reads a cache file. Returns null when it is absent, and { problem } (naming the file) when it exists
 * but is unusable: truncated, damaged, another format version or another key.
 */
export function readImageCache<M>(file: string, key: string): CachedImages<M> | { problem: string } | null {
  if (!fs.existsSync(file)) return null;
  const buf = fs.readFileSync(file);
  const bad = (why: string) => ({ problem: `image cache ${file}: ${why}` });
  if (buf.length < 12 || !buf.subarray(0, 8).equals(MAGIC)) return bad('not a CPCTIMG1 cache file');
  const hlen = buf.readUInt32LE(8);
  if (12 + hlen > buf.length) return bad(`truncated (header of ${hlen} bytes, file of ${buf.length})`);
  let h: Header<M>;
  try {
    h = JSON.parse(buf.subarray(12, 12 + hlen).toString('utf8'));
  } catch {
    return bad('header is not valid JSON');
  }
  if (h.version !== 1) return bad(`format version ${h.version}, expected 1`);
  if (h.key !== key) return bad('written for other source or options');
  const bytes = h.n * h.height * h.width * 3;
  if (buf.length !== 12 + hlen + bytes) return bad(`expected ${12 + hlen + bytes} bytes, found ${buf.length} (truncated?)`);
  if (!Array.isArray(h.ids) || h.ids.length !== h.n) return bad(`${h.ids?.length} ids for ${h.n} images`);
  const images = new Uint8Array(buf.buffer, buf.byteOffset + 12 + hlen, bytes);
  if (crypto.createHash('sha256').update(images).digest('hex') !== h.sha256) return bad('pixel checksum mismatch (damaged)');
  return { images, n: h.n, height: h.height, width: h.width, ids: h.ids, meta: h.meta };
}
