import * as zlib from 'zlib';

/**
 * The PNG files the HTTP client uploads and the kit's server reads back, for small images (32x32), where
 * a library's per-image set-up costs more than the pixels: pngjs spends ~360 us encoding and ~150 us
 * decoding a 32x32 image, most of it creating zlib streams, which made HTTP labeling half as fast as
 * local labeling (docs/oracle-api.md §5). Here the client writes the pixels uncompressed, in zlib's
 * "stored" blocks (a valid PNG any decoder reads; ~3.2 KB for 32x32 instead of ~1.6-3 KB deflated,
 * nothing on a loopback or a LAN), and the server reads stored blocks by copying them; any other
 * compressed PNG of the fast-path kind goes through zlib.inflateSync. CRCs and the Adler-32 are
 * checked, so a damaged file is refused as pngjs would refuse it. Everything else (palette, 16-bit,
 * gray, interlaced, other sizes) is left to sharp (decode.ts).
 */

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export class PngError extends Error {}

function adler32(data: Uint8Array): number {
  let a = 1;
  let b = 0;
  // 5552 bytes is the most that can be summed before the 32-bit sums must be reduced (zlib's NMAX).
  for (let off = 0; off < data.length; ) {
    const end = Math.min(data.length, off + 5552);
    for (; off < end; off++) {
      a += data[off];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(zlib.crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/**
 * 8-bit RGB PNG of image `i` of an NHWC uint8 array: filter type 0 on every row, the zlib stream made of
 * stored blocks (no compression), so encoding is a copy plus two checksums.
 */
export function encodeRgbPng(images: Uint8Array, i: number, height: number, width: number): Buffer {
  const row = width * 3;
  const raw = new Uint8Array(height * (row + 1));
  const base = i * height * row;
  for (let y = 0; y < height; y++) raw.set(images.subarray(base + y * row, base + (y + 1) * row), y * (row + 1) + 1);
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const z = new Uint8Array(2 + raw.length + 5 * blocks + 4);
  z[0] = 0x78; // deflate, 32 KiB window
  z[1] = 0x01; // no preset dictionary, fastest; (0x78 * 256 + 0x01) % 31 === 0 as zlib requires
  let o = 2;
  for (let s = 0, b = 0; b < blocks; b++, s += 65535) {
    const len = Math.min(65535, raw.length - s);
    z[o] = b === blocks - 1 ? 1 : 0; // BFINAL, BTYPE 00 (stored)
    z[o + 1] = len & 0xff;
    z[o + 2] = len >>> 8;
    z[o + 3] = ~len & 0xff;
    z[o + 4] = (~len >>> 8) & 0xff;
    z.set(raw.subarray(s, s + len), o + 5);
    o += 5 + len;
  }
  const ad = adler32(raw);
  z[o] = ad >>> 24;
  z[o + 1] = (ad >>> 16) & 0xff;
  z[o + 2] = (ad >>> 8) & 0xff;
  z[o + 3] = ad & 0xff;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB; compression, filter, interlace 0
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', z), chunk('IEND', new Uint8Array(0))]);
}

/** A zlib stream of stored blocks, copied out (Adler-32 checked); undefined if it has compressed blocks. */
function storedInflate(z: Uint8Array): Uint8Array | undefined {
  if (z.length < 7 || (z[0] & 0x0f) !== 8 || ((z[0] << 8) | z[1]) % 31 !== 0 || z[1] & 0x20) return undefined;
  const parts: Uint8Array[] = [];
  let o = 2;
  let total = 0;
  for (;;) {
    if (o + 5 > z.length) return undefined;
    const head = z[o];
    if ((head & 0x06) !== 0) return undefined; // a compressed block: zlib's job
    const len = z[o + 1] | (z[o + 2] << 8);
    const nlen = z[o + 3] | (z[o + 4] << 8);
    if ((len ^ 0xffff) !== nlen || o + 5 + len > z.length) throw new PngError('damaged stored block');
    parts.push(z.subarray(o + 5, o + 5 + len));
    total += len;
    o += 5 + len;
    if (head & 1) break;
  }
  const out = parts.length === 1 ? parts[0] : Buffer.concat(parts, total);
  if (o + 4 > z.length) throw new PngError('truncated zlib stream');
  const want = ((z[o] << 24) | (z[o + 1] << 16) | (z[o + 2] << 8) | z[o + 3]) >>> 0;
  if (adler32(out) !== want) throw new PngError('zlib checksum mismatch');
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * RGB pixels of an 8-bit RGB/RGBA, non-interlaced PNG of exactly height x width (alpha dropped, like
 * sharp's removeAlpha); undefined for any other kind of PNG. Throws PngError for a damaged file.
 */
export function decodeRgbPng(file: Uint8Array, height: number, width: number): Uint8Array | undefined {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE) || buf.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const w = buf.readUInt32BE(16);
  const h = buf.readUInt32BE(20);
  const depth = buf[24];
  const color = buf[25];
  if (w !== width || h !== height || depth !== 8 || (color !== 2 && color !== 6) || buf[26] !== 0 || buf[27] !== 0 || buf[28] !== 0) return undefined;
  const idat: Uint8Array[] = [];
  let o = 8;
  let ended = false;
  while (o + 12 <= buf.length) {
    const len = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    if (o + 12 + len > buf.length) throw new PngError(`chunk ${type} runs past the end of the file`);
    if ((zlib.crc32(buf.subarray(o + 4, o + 8 + len)) >>> 0) !== buf.readUInt32BE(o + 8 + len)) throw new PngError(`CRC mismatch in chunk ${type}`);
    if (type === 'IDAT') idat.push(buf.subarray(o + 8, o + 8 + len));
    o += 12 + len;
    if (type === 'IEND') {
      ended = true;
      break;
    }
  }
  if (!ended) throw new PngError('no IEND chunk (file cut short?)');
  if (idat.length === 0) throw new PngError('no IDAT chunk');
  const z = idat.length === 1 ? idat[0] : Buffer.concat(idat);
  let raw: Uint8Array;
  try {
    raw = storedInflate(z) ?? zlib.inflateSync(z);
  } catch (e) {
    throw e instanceof PngError ? e : new PngError(`bad image data (${(e as Error).message})`);
  }
  const bpp = color === 6 ? 4 : 3;
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) throw new PngError(`image data holds ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const rgb = new Uint8Array(height * width * 3);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp] : 0;
      const b = prev[x];
      const c = x >= bpp ? prev[x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >>> 1;
      else if (f === 4) v += paeth(a, b, c);
      else if (f !== 0) throw new PngError(`unknown filter type ${f} in row ${y}`);
      cur[x] = v & 0xff;
    }
    for (let x = 0, p = y * width * 3; x < width; x++, p += 3) {
      rgb[p] = cur[x * bpp];
      rgb[p + 1] = cur[x * bpp + 1];
      rgb[p + 2] = cur[x * bpp + 2];
    }
    prev.set(cur);
  }
  return rgb;
}
