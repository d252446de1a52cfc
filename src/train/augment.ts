import { ImageSet } from '../types';

export interface AugmentationConfig {
  /** Pad by `pad` zero (black) pixels on each side, then take a random crop of the original size. */
  crop: boolean;
  /** Mirror horizontally with probability 1/2. */
  flip: boolean;
  /** Padding for the random crop; default 4 (the standard CIFAR recipe). */
  pad?: number;
  /**
   * Side of a square set to mid-grey (128) at a uniformly random centre, after crop and flip; the square
   * may stick out of the image (DeVries & Taylor 2017, "cutout"). 0 or absent = off. A regulariser for
   * copycats, whose stolen set is fixed: it cannot ask the oracle about more images.
   */
  cutout?: number;
  /**
   * Share of the images that get crop/flip/cutout at all; the others are used as they are. Default 1.
   * For copycats: the stolen label belongs to the unaltered image only (bench:consistency), so a share
   * below 1 trades augmentation's label noise against overfitting a fixed set.
   */
  probability?: number;
}

/**
 * Copies the images `indices` of `set` into a new uint8 NHWC buffer, randomly cropped/flipped. Done
 * on the uint8 data in JS so it costs the same on every backend and never creates float tensors;
 * cropping a zero-padded image is done by index arithmetic, without building the padded copy.
 * `altered`, when given (length >= indices.length), gets 1 for each image that differs from the
 * original (moved, mirrored or cut out) and 0 for one passed through: a stolen label is exact only
 * for the latter.
 */
export function augmentBatch(
  set: Pick<ImageSet, 'images' | 'height' | 'width'>,
  indices: ArrayLike<number>,
  cfg: AugmentationConfig,
  rng: () => number,
  altered?: Uint8Array,
): Uint8Array {
  const { height: h, width: w } = set;
  const img = h * w * 3;
  const out = new Uint8Array(indices.length * img);
  const pad = cfg.crop ? (cfg.pad ?? 4) : 0;
  const p = cfg.probability ?? 1;
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b] * img;
    const dst = b * img;
    if (altered) altered[b] = 0;
    // Drawn only when p < 1, so runs at the default keep their exact random streams.
    if (p < 1 && rng() >= p) {
      out.set(set.images.subarray(src, src + img), dst);
      continue;
    }
    // Offsets of the crop window relative to the unpadded image, in -pad..pad.
    const dy = pad ? Math.floor(rng() * (2 * pad + 1)) - pad : 0;
    const dx = pad ? Math.floor(rng() * (2 * pad + 1)) - pad : 0;
    const flip = cfg.flip && rng() < 0.5;
    if (!dy && !dx && !flip) {
      out.set(set.images.subarray(src, src + img), dst);
    } else {
      copyShifted(set.images, src, out, dst, h, w, dy, dx, flip);
      if (altered) altered[b] = 1;
    }
    if (cfg.cutout) {
      if (altered) altered[b] = 1;
      // Draws happen only when cutout is on, so runs without it keep their exact random streams.
      const cy = Math.floor(rng() * h);
      const cx = Math.floor(rng() * w);
      const half = Math.floor(cfg.cutout / 2);
      const y0 = Math.max(0, cy - half), y1 = Math.min(h, cy - half + cfg.cutout);
      const x0 = Math.max(0, cx - half), x1 = Math.min(w, cx - half + cfg.cutout);
      for (let y = y0; y < y1; y++) out.fill(128, dst + (y * w + x0) * 3, dst + (y * w + x1) * 3);
    }
  }
  return out;
}

/**
 * Every image of `set` moved by (dy, dx) pixels, optionally mirrored first, with the uncovered border
 * black: the same view augmentBatch's crop gives for that offset. For test-time augmentation.
 */
export function shiftImages(
  set: Pick<ImageSet, 'images' | 'height' | 'width' | 'n'>,
  dy: number, dx: number, flip: boolean,
): Uint8Array {
  const { height: h, width: w } = set;
  const img = h * w * 3;
  const out = new Uint8Array(set.n * img);
  for (let b = 0; b < set.n; b++) copyShifted(set.images, b * img, out, b * img, h, w, dy, dx, flip);
  return out;
}

function copyShifted(
  images: Uint8Array, src: number, out: Uint8Array, dst: number,
  h: number, w: number, dy: number, dx: number, flip: boolean,
): void {
  for (let y = 0; y < h; y++) {
    const sy = y + dy;
    if (sy < 0 || sy >= h) continue; // stays zero: the padding
    for (let x = 0; x < w; x++) {
      const sx = (flip ? w - 1 - x : x) + dx;
      if (sx < 0 || sx >= w) continue;
      const s = src + (sy * w + sx) * 3;
      const d = dst + (y * w + x) * 3;
      out[d] = images[s];
      out[d + 1] = images[s + 1];
      out[d + 2] = images[s + 2];
    }
  }
}
