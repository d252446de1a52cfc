/**
 * The strong view of FixMatch (Sohn et al. 2020): RandAugment with a random magnitude per op (the
 * paper's "RA" variant, its table 12), then cutout. Written here on uint8 RGB in JS because no kept
 * library does it for raw pixel arrays: sharp works per image, asynchronously, and lacks posterize,
 * equalize and shear; tf.image lacks most ops. At 32x32 an image costs microseconds, and drawing every
 * choice from the caller's seeded rng keeps runs reproducible and resumable.
 */

export interface StrongAugmentConfig {
  /** Ops applied per image, each drawn uniformly from STRONG_OPS (FixMatch: 2). */
  ops: number;
  /** Side of the mid-grey cutout square, in pixels (FixMatch: half the image side). 0 = none. */
  cutout: number;
}

type Op = (img: Uint8Array, h: number, w: number, v: number) => void;

const clamp = (x: number): number => (x < 0 ? 0 : x > 255 ? 255 : Math.round(x));
const FILL = 128;

/** Pixel (y, x) of the inverse-mapped source, nearest neighbour, mid-grey outside (as FixMatch fills). */
function affine(img: Uint8Array, h: number, w: number, m: [number, number, number, number, number, number]): void {
  const src = img.slice();
  const cy = (h - 1) / 2, cx = (w - 1) / 2;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dx = x - cx, dy = y - cy;
      const sx = Math.round(m[0] * dx + m[1] * dy + m[2] + cx);
      const sy = Math.round(m[3] * dx + m[4] * dy + m[5] + cy);
      const d = (y * w + x) * 3;
      if (sx < 0 || sy < 0 || sx >= w || sy >= h) {
        img[d] = img[d + 1] = img[d + 2] = FILL;
      } else {
        const s = (sy * w + sx) * 3;
        img[d] = src[s]; img[d + 1] = src[s + 1]; img[d + 2] = src[s + 2];
      }
    }
  }
}

/** Blend with a degenerate image: factor 0 gives `other`, 1 the image (PIL's ImageEnhance). */
function blend(img: Uint8Array, other: (i: number) => number, factor: number): void {
  for (let i = 0; i < img.length; i++) img[i] = clamp(other(i) + factor * (img[i] - other(i)));
}

const grey = (img: Uint8Array, p: number): number => 0.299 * img[p] + 0.587 * img[p + 1] + 0.114 * img[p + 2];

/** v in [0, 1] is the op's magnitude, drawn per image. Ranges are FixMatch's (RA, table 12). */
export const STRONG_OPS: Record<string, Op> = {
  identity: () => undefined,
  autoContrast: (img) => {
    for (let c = 0; c < 3; c++) {
      let lo = 255, hi = 0;
      for (let i = c; i < img.length; i += 3) { lo = Math.min(lo, img[i]); hi = Math.max(hi, img[i]); }
      if (hi > lo) for (let i = c; i < img.length; i += 3) img[i] = clamp(((img[i] - lo) * 255) / (hi - lo));
    }
  },
  equalize: (img) => {
    const n = img.length / 3;
    for (let c = 0; c < 3; c++) {
      const hist = new Uint32Array(256);
      for (let i = c; i < img.length; i += 3) hist[img[i]]++;
      const lut = new Uint8Array(256);
      let cum = 0;
      for (let k = 0; k < 256; k++) { cum += hist[k]; lut[k] = clamp((cum * 255) / n); }
      for (let i = c; i < img.length; i += 3) img[i] = lut[img[i]];
    }
  },
  brightness: (img, _h, _w, v) => blend(img, () => 0, 0.05 + 0.9 * v),
  color: (img, _h, _w, v) => {
    const g = new Float32Array(img.length / 3);
    for (let p = 0; p < g.length; p++) g[p] = grey(img, 3 * p);
    blend(img, (i) => g[(i / 3) | 0], 0.05 + 0.9 * v);
  },
  contrast: (img, _h, _w, v) => {
    let mean = 0;
    for (let p = 0; p < img.length; p += 3) mean += grey(img, p);
    mean /= img.length / 3;
    blend(img, () => mean, 0.05 + 0.9 * v);
  },
  sharpness: (img, h, w, v) => {
    // PIL's smoothing kernel [1 1 1; 1 5 1; 1 1 1] / 13 inside, the border kept.
    const smooth = img.slice();
    for (let y = 1; y < h - 1; y++) {
      for (let x = 1; x < w - 1; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 4 * img[(y * w + x) * 3 + c];
          for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) s += img[((y + dy) * w + x + dx) * 3 + c];
          smooth[(y * w + x) * 3 + c] = clamp(s / 13);
        }
      }
    }
    blend(img, (i) => smooth[i], 0.05 + 0.9 * v);
  },
  posterize: (img, _h, _w, v) => {
    const bits = 4 + Math.min(4, Math.floor(5 * v));
    const mask = (0xff << (8 - bits)) & 0xff;
    for (let i = 0; i < img.length; i++) img[i] &= mask;
  },
  solarize: (img, _h, _w, v) => {
    const t = Math.round(256 * v);
    for (let i = 0; i < img.length; i++) if (img[i] >= t) img[i] = 255 - img[i];
  },
  rotate: (img, h, w, v) => {
    const a = ((-30 + 60 * v) * Math.PI) / 180;
    affine(img, h, w, [Math.cos(a), Math.sin(a), 0, -Math.sin(a), Math.cos(a), 0]);
  },
  shearX: (img, h, w, v) => affine(img, h, w, [1, -0.3 + 0.6 * v, 0, 0, 1, 0]),
  shearY: (img, h, w, v) => affine(img, h, w, [1, 0, 0, -0.3 + 0.6 * v, 1, 0]),
  translateX: (img, h, w, v) => affine(img, h, w, [1, 0, (-0.3 + 0.6 * v) * w, 0, 1, 0]),
  translateY: (img, h, w, v) => affine(img, h, w, [1, 0, 0, 0, 1, (-0.3 + 0.6 * v) * h]),
};
const OP_NAMES = Object.keys(STRONG_OPS);

/**
 * Strongly augmented copies of `images` (uint8 NHWC, n images of h x w): `ops` random ops of random
 * magnitude each, then a cutout square at a random centre. A new buffer; the input is left as it is.
 */
export function strongAugment(images: Uint8Array, n: number, h: number, w: number, cfg: StrongAugmentConfig, rng: () => number): Uint8Array {
  const px = h * w * 3;
  if (images.length < n * px) throw new Error(`strongAugment: ${images.length} bytes for ${n} images of ${h}x${w}x3`);
  if (!Number.isInteger(cfg.ops) || cfg.ops < 0) throw new Error(`strongAugment: ops must be an integer >= 0, got ${cfg.ops}`);
  const out = images.slice(0, n * px);
  for (let b = 0; b < n; b++) {
    const img = out.subarray(b * px, (b + 1) * px);
    for (let k = 0; k < cfg.ops; k++) {
      const op = OP_NAMES[Math.floor(rng() * OP_NAMES.length)];
      STRONG_OPS[op](img, h, w, rng());
    }
    if (cfg.cutout > 0) {
      const cy = Math.floor(rng() * h), cx = Math.floor(rng() * w);
      const half = Math.floor(cfg.cutout / 2);
      const y0 = Math.max(0, cy - half), y1 = Math.min(h, cy - half + cfg.cutout);
      const x0 = Math.max(0, cx - half), x1 = Math.min(w, cx - half + cfg.cutout);
      for (let y = y0; y < y1; y++) img.fill(FILL, (y * w + x0) * 3, (y * w + x1) * 3);
    }
  }
  return out;
}
