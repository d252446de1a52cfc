import * as fs from 'fs';

/**
 * The fast JPEG path: mozjpeg compiled to wasm (@jsquash/jpeg) decodes a 64x64 JPEG in ~0.1 ms, where a
 * sharp pipeline spends ~1 ms of per-image overhead. Only JPEGs it is known to handle go this way (see
 * `fastJpegEligible`); everything else, and anything it fails on, goes to sharp. Its libjpeg error
 * handler calls exit(), which leaves the wasm instance unusable, so a failure re-instantiates it.
 */

export interface JpegHeader {
  width: number;
  height: number;
  components: number;
  precision: number;
  /** SOF marker (0xC0 baseline, 0xC1 extended, 0xC2 progressive, others arithmetic/lossless). */
  sof: number;
  /** An EOI marker (FF D9) closes the data: a file cut short lacks it. */
  complete: boolean;
}

/** Reads a JPEG's frame header by walking its markers; null when `b` is not a well-formed JPEG start. */
export function scanJpeg(b: Uint8Array): JpegHeader | null {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) { i++; continue; } // fill byte
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) { i += 2; continue; }
    const len = (b[i + 2] << 8) | b[i + 3];
    if (len < 2) return null;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (i + 9 >= b.length) return null;
      let complete = false;
      // Entropy-coded data escapes 0xFF, so FF D9 near the end can only be the EOI marker.
      for (let k = b.length - 2; k >= Math.max(i, b.length - 4096); k--) {
        if (b[k] === 0xff && b[k + 1] === 0xd9) { complete = true; break; }
      }
      return {
        sof: marker, precision: b[i + 4], height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9], complete,
      };
    }
    if (marker === 0xda || marker === 0xd9) return null; // scan before any frame header
    i += 2 + len;
  }
  return null;
}

export function fastJpegEligible(h: JpegHeader | null, maxPixels: number): boolean {
  return !!h && h.complete && (h.sof === 0xc0 || h.sof === 0xc1 || h.sof === 0xc2) && h.precision === 8
    && (h.components === 1 || h.components === 3) && h.width > 0 && h.height > 0 && h.width * h.height <= maxPixels;
}

interface Rgba { data: Uint8ClampedArray | Uint8Array; width: number; height: number }
/** WebAssembly is a Node global, but lib ES2022 has no types for it; only these two calls are needed. */
interface Wasm { Module: new (bytes: Uint8Array) => object }
const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

interface MozjpegDecoder {
  init(module: object, overrides?: Record<string, unknown>): Promise<void>;
  default(buffer: Uint8Array, options?: { preserveOrientation?: boolean }): Promise<Rgba>;
}

let decoder: MozjpegDecoder | undefined;
let compiled: object | undefined;
let ready: Promise<void> | undefined;

function instantiate(): Promise<void> {
  if (!decoder) {
    // A require of the ESM package (Node >= 20.19): typed locally so our .d.ts never names its DOM types.
    decoder = require('@jsquash/jpeg/decode.js') as MozjpegDecoder;
    compiled = new wasm.Module(fs.readFileSync(require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm')));
  }
  const silent = () => undefined; // libjpeg warnings would go to stderr; failures are reported by the caller
  ready = decoder.init(compiled as object, { print: silent, printErr: silent });
  return ready;
}

/** Decodes an eligible JPEG to RGBA (JPEG has no alpha: the 4th channel is 255). Throws on failure. */
export async function decodeJpegFast(bytes: Uint8Array): Promise<Rgba> {
  await (ready ?? instantiate());
  try {
    return await (decoder as MozjpegDecoder).default(bytes, { preserveOrientation: false });
  } catch (e) {
    await instantiate();
    throw e;
  }
}
