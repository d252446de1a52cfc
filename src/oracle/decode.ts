import sharp from 'sharp';

/**
 * Turns an uploaded image file into the model's uint8 RGB input. Resizing uses sharp with fit 'fill'
 * (stretch to exactly height x width, no crop, no padding; sharp's default lanczos3 kernel), the usual
 * "resize to 32x32" of the Copycat authors' scripts. An image already at the target size is passed
 * through untouched, so a PNG of a 32x32 image gives the server exactly the pixels a local oracle sees.
 */

/** Decoding guard: a tiny compressed file can expand to gigapixels ("decompression bomb"). */
export const MAX_INPUT_PIXELS = 4096 * 4096;

export class InvalidImage extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidImage';
  }
}

export async function decodeToRgb(file: Uint8Array, height: number, width: number): Promise<Uint8Array> {
  let pipeline: sharp.Sharp;
  let meta: sharp.Metadata;
  try {
    pipeline = sharp(file, { limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error' });
    meta = await pipeline.metadata();
  } catch (e) {
    throw new InvalidImage(`not a decodable image (${(e as Error).message})`);
  }
  if (!meta.format || !['png', 'jpeg', 'webp', 'gif', 'tiff'].includes(meta.format)) {
    throw new InvalidImage(`unsupported image format '${meta.format}' (send PNG or JPEG)`);
  }
  try {
    // Grayscale and palette images become 3-channel sRGB; alpha is dropped (flattened on black would
    // invent pixels; the model was trained on opaque images).
    let p = pipeline.removeAlpha().toColourspace('srgb');
    if (meta.width !== width || meta.height !== height) p = p.resize(width, height, { fit: 'fill' });
    const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) {
      throw new Error(`decoded to ${info.width}x${info.height}, expected ${width}x${height}`);
    }
    if (info.channels === 3) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels === 1) {
      const rgb = new Uint8Array(width * height * 3);
      for (let i = 0; i < width * height; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = data[i];
      return rgb;
    }
    throw new Error(`decoded to ${info.channels} channels, expected 3`);
  } catch (e) {
    throw new InvalidImage(`image could not be decoded (${(e as Error).message})`);
  }
}

/** Lossless PNG of image `i` of an NHWC uint8 array: what the HTTP client uploads. */
export async function encodePng(images: Uint8Array, i: number, height: number, width: number): Promise<Buffer> {
  const px = height * width * 3;
  const raw = Buffer.from(images.buffer, images.byteOffset + i * px, px);
  // Compression level 1: uploads are tiny and encoding speed matters more than 10% of bytes on loopback.
  return sharp(raw, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}
