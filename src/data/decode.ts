import sharp from 'sharp';
import { decodeJpegFast, fastJpegEligible, scanJpeg } from './jpegFast';
import { resampleRgb } from './resample';

export interface DecodeOptions {
  /** Side of the square output (default 32). */
  size?: number;
  /** Images with more pixels are refused before decoding (decompression bombs); default 64 megapixels. */
  maxPixels?: number;
  /**
   * Colour transparent pixels are composited on (default 'black': premultiplying by alpha, so a
   * transparent pixel carries no invented colour; the value is part of the cache key).
   */
  background?: 'white' | 'black';
}

export type DecodeResult = { ok: true } | { ok: false; reason: string; detail: string };

export const DEFAULT_MAX_PIXELS = 64_000_000;

/** Short, countable reasons; the detail (sharp's message) goes to the examples. */
export const SKIP = {
  empty: 'empty file',
  notImage: 'not an image or unsupported format',
  corrupt: 'corrupt or truncated image',
  tooManyPixels: 'too many pixels (decompression bomb guard)',
  tooLarge: 'file too large',
  unreadable: 'unreadable entry',
  notImageName: 'not an image file name',
} as const;

function classify(message: string): string {
  if (/unsupported image format|bad seek|not a known file format|Input file is missing/i.test(message)) return SKIP.notImage;
  if (/pixel limit|exceeds.*limit/i.test(message)) return SKIP.tooManyPixels;
  return SKIP.corrupt;
}

/**
 * Decodes one encoded image (any format sharp reads), converts grayscale/CMYK/alpha to RGB (alpha
 * flattened on `background`), resizes the whole image to size x size (see resample.ts) and writes the
 * size*size*3 RGB bytes into `out` at `offset`. Never throws for bad input: it says why it skipped.
 */
export async function decodeInto(bytes: Uint8Array, out: Uint8Array, offset: number, opts: DecodeOptions = {}): Promise<DecodeResult> {
  const size = opts.size ?? 32;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) return { ok: false, reason: SKIP.empty, detail: '0 bytes' };
  const header = scanJpeg(bytes);
  if (fastJpegEligible(header, maxPixels)) {
    try {
      const img = await decodeJpegFast(bytes);
      resampleRgb(img.data, img.width, img.height, 4, size, size, out, offset);
      return { ok: true };
    } catch {
      /* fall through: sharp decodes it or says precisely what is wrong */
    }
  } else if (header && header.width * header.height > maxPixels) {
    return { ok: false, reason: SKIP.tooManyPixels, detail: `${header.width}x${header.height} > ${maxPixels} pixels` };
  }
  const bg = opts.background === 'white' ? { r: 255, g: 255, b: 255 } : { r: 0, g: 0, b: 0 };
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: maxPixels, failOn: 'warning', pages: 1 })
      .flatten({ background: bg })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const ch = info.channels;
    if (data.length !== info.width * info.height * ch) {
      return { ok: false, reason: SKIP.corrupt, detail: `decoder returned ${data.length} bytes for ${info.width}x${info.height}x${ch}` };
    }
    if (ch === 3 || ch === 4) {
      resampleRgb(data, info.width, info.height, ch, size, size, out, offset);
    } else {
      // 1 or 2 bands left (grey, grey+alpha): replicate the grey level.
      const rgb = new Uint8Array(info.width * info.height * 3);
      for (let p = 0, q = 0; q < rgb.length; p += ch, q += 3) rgb[q] = rgb[q + 1] = rgb[q + 2] = data[p];
      resampleRgb(rgb, info.width, info.height, 3, size, size, out, offset);
    }
    return { ok: true };
  } catch (e) {
    const message = (e as Error).message ?? String(e);
    return { ok: false, reason: classify(message), detail: message };
  }
}
