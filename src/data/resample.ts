/**
 * Resizing a decoded image to the model's square input ("fill": the whole image, aspect ratio not kept,
 * as the paper fed whole natural images to a 32x32 network). Per axis: area averaging when shrinking
 * (every source pixel contributes by its overlap, like OpenCV's INTER_AREA, so no aliasing), linear
 * interpolation when enlarging. Done in JS rather than by sharp's resize: for 64x64 inputs a libvips
 * resize pipeline costs ~1 ms of fixed overhead per image, 3x the decode itself (measured, see docs/data.md).
 */

interface Taps {
  /** First source index read by each output index. */
  start: Int32Array;
  /** Number of source indices read by each output index. */
  count: Int32Array;
  /** Flattened weights, `maxCount` slots per output index. */
  weights: Float64Array;
  maxCount: number;
}

const tapCache = new Map<string, Taps>();

function taps(inSize: number, outSize: number): Taps {
  const key = `${inSize}>${outSize}`;
  const hit = tapCache.get(key);
  if (hit) return hit;
  const scale = inSize / outSize;
  const maxCount = scale >= 1 ? Math.ceil(scale) + 1 : 2;
  const t: Taps = { start: new Int32Array(outSize), count: new Int32Array(outSize), weights: new Float64Array(outSize * maxCount), maxCount };
  for (let o = 0; o < outSize; o++) {
    if (scale >= 1) {
      const lo = o * scale;
      const hi = Math.min(inSize, (o + 1) * scale);
      const first = Math.floor(lo);
      let k = 0;
      for (let i = first; i < hi && k < maxCount; i++, k++) {
        t.weights[o * maxCount + k] = (Math.min(i + 1, hi) - Math.max(i, lo)) / scale;
      }
      t.start[o] = first;
      t.count[o] = k;
    } else {
      // Pixel centres aligned (half-pixel convention), clamped at the borders.
      const x = Math.min(Math.max((o + 0.5) * scale - 0.5, 0), inSize - 1);
      const i0 = Math.floor(x);
      const f = x - i0;
      t.start[o] = i0;
      if (f > 0 && i0 + 1 < inSize) {
        t.count[o] = 2;
        t.weights[o * maxCount] = 1 - f;
        t.weights[o * maxCount + 1] = f;
      } else {
        t.count[o] = 1;
        t.weights[o * maxCount] = 1;
      }
    }
  }
  if (tapCache.size > 256) tapCache.clear();
  tapCache.set(key, t);
  return t;
}

/**
 * Resamples an interleaved image with `channels` (3 or 4; a 4th channel is ignored, callers flatten alpha
 * first) to outW x outH RGB, written into `out` at `offset`.
 */
export function resampleRgb(
  src: ArrayLike<number>, width: number, height: number, channels: number,
  outW: number, outH: number, out: Uint8Array, offset = 0,
): void {
  if (channels !== 3 && channels !== 4) throw new Error(`resampleRgb: expected 3 or 4 channels, got ${channels}`);
  if (src.length < width * height * channels) throw new Error(`resampleRgb: ${src.length} values for a ${width}x${height}x${channels} image`);
  const tx = taps(width, outW);
  const ty = taps(height, outH);
  // Horizontal pass into float rows, then vertical pass; float64 keeps exact averages (e.g. 2x2 means).
  const tmp = new Float64Array(height * outW * 3);
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    for (let o = 0; o < outW; o++) {
      let r = 0, g = 0, b = 0;
      const s0 = tx.start[o];
      const base = o * tx.maxCount;
      for (let k = 0; k < tx.count[o]; k++) {
        const w = tx.weights[base + k];
        const p = row + (s0 + k) * channels;
        r += src[p] * w; g += src[p + 1] * w; b += src[p + 2] * w;
      }
      const d = (y * outW + o) * 3;
      tmp[d] = r; tmp[d + 1] = g; tmp[d + 2] = b;
    }
  }
  for (let o = 0; o < outH; o++) {
    const s0 = ty.start[o];
    const base = o * ty.maxCount;
    for (let x = 0; x < outW * 3; x++) {
      let v = 0;
      for (let k = 0; k < ty.count[o]; k++) v += tmp[(s0 + k) * outW * 3 + x] * ty.weights[base + k];
      // Round half up; clamp guards against float error at 255.
      const q = Math.floor(v + 0.5);
      out[offset + o * outW * 3 + x] = q < 0 ? 0 : q > 255 ? 255 : q;
    }
  }
}
