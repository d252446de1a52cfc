import sharp from 'sharp';
import { decodeRgbPng, encodeRgbPng } from './png';

/**
 * Turns an uploaded image file into the model's uint8 RGB input. Resizing uses sharp with fit 'fill'
 * (stretch to exactly height x width, no crop, no padding; sharp's default lanczos3 kernel), the usual
 * "resize to 32x32" of the Copycat authors' scripts. An image already at the target size is passed
 * through untouched, so a PNG of a 32x32 image gives the server exactly the pixels a local oracle sees.
 *
 * PNGs of 8-bit RGB/RGBA already at the model's size (what the kit's HTTP client uploads) take a
 * synchronous path of our own on both sides (png.ts): for 32x32 images libvips' per-call set-up
 * dominates (1010 us encode, 815 us decode per image), pngjs's zlib streams still cost 364 / 149 us,
 * and stored PNG blocks cost a copy and two checksums. Everything else (JPEG, other sizes, palette,
 * 16-bit) goes through sharp.
 */

/** Decoding guard: a tiny compressed file can expand to gigapixels ("decompression bomb"). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

export class InvalidImage extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidImage';
  }
}

/** Image formats accepted, by magic bytes: sniffing first keeps SVG/PDF/etc. renderers of libvips out of reach. */
export function sniffImageFormat(file: Uint8Array): 'png' | 'jpeg' | 'webp' | 'gif' | undefined {
  const b = file;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...b.subarray(8, 12)) === 'WEBP') return 'webp';
  if (b.length >= 6 && String.fromCharCode(...b.subarray(0, 4)) === 'GIF8') return 'gif';
  return undefined;
}

/** The fast path for 8-bit RGB(A) PNGs of exactly height x width (png.ts); undefined for any other file. */
function decodeSmallPng(file: Uint8Array, height: number, width: number): Uint8Array | undefined {
  try {
    return decodeRgbPng(file, height, width);
  } catch (e) {
    throw new InvalidImage(`not a decodable image (PNG: ${(e as Error).message})`);
  }
}

export async function decodeToRgb(file: Uint8Array, height: number, width: number): Promise<Uint8Array> {
  const format = sniffImageFormat(file);
  if (!format) {
    throw new InvalidImage(`not a decodable image (expected PNG, JPEG, WebP or GIF bytes; got ${file.length} bytes starting ${Buffer.from(file.subarray(0, 8)).toString('hex')})`);
  }
  if (format === 'png') {
    const fast = decodeSmallPng(file, height, width);
    if (fast) return fast;
  }
  let data: Buffer;
  let info: sharp.OutputInfo;
  try {
    // One libvips pipeline per image (no separate metadata() call: for 32x32 images the per-call
    // overhead dominates). Resizing to the size an image already has is an exact no-op in sharp, so
    // 32x32 uploads keep their pixels. Grayscale/palette become sRGB; alpha is dropped (the model
    // was trained on opaque images).
    ({ data, info } = await sharp(file, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(width, height, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new InvalidImage(`not a decodable image (${(e as Error).message})`);
  }
  if (info.width !== width || info.height !== height) {
    throw new InvalidImage(`decoded to ${info.width}x${info.height}, expected ${width}x${height}`);
  }
  if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 1) {
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i];
    return rgb;
  }
  throw new InvalidImage(`decoded to ${info.channels} channels, expected 3`);
}

/** Lossless PNG of image `i` of an NHWC uint8 array: what the HTTP client uploads (stored, see png.ts). */
export async function encodePng(images: Uint8Array, i: number, height: number, width: number): Promise<Buffer> {
  return encodeRgbPng(images, i, height, width);
}
