import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { CIFAR10_CLASSES, ImageSet } from '../types';
import { showPng } from './notebook';

/**
 * A PNG contact sheet of small images with one caption each (typically the class name of the stolen
 * label), to eyeball what the oracle answered for NPD images. Pixels are upscaled with nearest neighbour
 * (a blurred 32x32 image hides exactly what one wants to see); captions are SVG text composited by sharp.
 */

export interface ImageGridOptions {
  /** Which images, in order (default the first `maxImages`). */
  indices?: ArrayLike<number>;
  /** Images per row (default 8). */
  columns?: number;
  /** Integer upscaling factor (default 3). */
  scale?: number;
  /** At most this many images (default 64). */
  maxImages?: number;
  /** One caption per shown image; default the class name of `set.labels` (via `classNames`), else the id. */
  captions?: string[];
  /** Default CIFAR-10's. */
  classNames?: readonly string[];
  /** Caption font size in px (default 11). */
  fontSize?: number;
  /** Gap between cells in px (default 4). */
  gap?: number;
}

function checkSet(set: ImageSet): void {
  if (!set || !(set.images instanceof Uint8Array)) throw new Error('imageGrid: set.images must be a Uint8Array (NHWC RGB)');
  for (const k of ['n', 'height', 'width'] as const) {
    if (!Number.isInteger(set[k]) || set[k] < 0) throw new Error(`imageGrid: set.${k} must be an integer >= 0, got ${set[k]}`);
  }
  const expected = set.n * set.height * set.width * 3;
  if (set.images.length !== expected) {
    throw new Error(`imageGrid: set.images has ${set.images.length} bytes, expected n*height*width*3 = ${expected}`);
  }
}

function xmlEscape(s: string): string {
  // Control characters are not allowed in XML 1.0 and would make librsvg reject the whole overlay.
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Cuts a caption to about what fits in `widthPx` (average glyph ~0.6 em), with an ellipsis. */
export function fitCaption(text: string, widthPx: number, fontSize: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const max = Math.max(1, Math.floor(widthPx / (fontSize * 0.6)));
  const chars = Array.from(flat); // by code point, so surrogate pairs are never split
  return chars.length <= max ? flat : `${chars.slice(0, Math.max(1, max - 1)).join('')}…`;
}

/**
 * `k` distinct indices of 0..n-1 drawn at random from a seed (all n, shuffled, when k >= n), in draw order.
 * For grids: the first images of a data set are rarely typical (NPD lists one source class after another,
 * so the first 32 were all goldfish). Partial Fisher-Yates over a sparse map: O(k) time and memory.
 */
export function sampleIndices(n: number, k: number, seed: number | string = 0): number[] {
  if (!Number.isInteger(n) || n < 0) throw new Error(`sampleIndices: n must be an integer >= 0, got ${n}`);
  if (!Number.isInteger(k) || k < 0) throw new Error(`sampleIndices: k must be an integer >= 0, got ${k}`);
  const rng = seedrandom(`image-sample/${seed}`);
  const m = Math.min(k, n);
  // moved.get(i): the value now at position i of the virtual array 0..n-1 (absent: still i).
  const moved = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const atJ = moved.get(j) ?? j;
    moved.set(j, moved.get(i) ?? i);
    out.push(atJ);
  }
  return out;
}

/** The grid as a PNG buffer. */
export async function imageGridPng(set: ImageSet, opts: ImageGridOptions = {}): Promise<Buffer> {
  checkSet(set);
  const maxImages = opts.maxImages ?? 64;
  const indices = opts.indices ? Array.from(opts.indices).slice(0, maxImages) : Array.from({ length: Math.min(set.n, maxImages) }, (_, i) => i);
  if (indices.length === 0) throw new Error('imageGrid: no images to show (empty set or indices)');
  indices.forEach((idx, j) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= set.n) throw new Error(`imageGrid: indices[${j}] = ${idx} is outside 0..${set.n - 1}`);
  });
  const scale = opts.scale ?? 3;
  if (!Number.isInteger(scale) || scale < 1 || scale > 32) throw new Error(`imageGrid: scale must be an integer in 1..32, got ${scale}`);
  const columns = Math.min(opts.columns ?? 8, indices.length);
  if (!Number.isInteger(columns) || columns < 1) throw new Error(`imageGrid: columns must be a positive integer, got ${opts.columns}`);
  const classNames = opts.classNames ?? CIFAR10_CLASSES;
  if (opts.captions && opts.captions.length !== indices.length) {
    throw new Error(`imageGrid: ${opts.captions.length} captions for ${indices.length} images (one caption per shown image)`);
  }
  const captions = indices.map((idx, j) => {
    if (opts.captions) return String(opts.captions[j] ?? '');
    if (set.labels) {
      const l = set.labels[idx];
      return classNames[l] ?? `class ${l}`;
    }
    return set.ids?.[idx] ?? '';
  });

  const fontSize = opts.fontSize ?? 11;
  const gap = opts.gap ?? 4;
  const hasCaptions = captions.some((c) => c.length > 0);
  const captionH = hasCaptions ? Math.ceil(fontSize * 1.5) : 0;
  const cw = set.width * scale;
  const ch = set.height * scale;
  const rows = Math.ceil(indices.length / columns);
  const W = columns * cw + (columns + 1) * gap;
  const H = rows * (ch + captionH) + (rows + 1) * gap;

  // Nearest-neighbour blit in JS: trivial, exact, and one sharp pipeline for the whole sheet.
  const canvas = Buffer.alloc(W * H * 3, 255);
  const px = set.height * set.width * 3;
  indices.forEach((idx, j) => {
    const x0 = gap + (j % columns) * (cw + gap);
    const y0 = gap + Math.floor(j / columns) * (ch + captionH + gap);
    const src = idx * px;
    for (let y = 0; y < ch; y++) {
      const sy = Math.floor(y / scale);
      let dst = ((y0 + y) * W + x0) * 3;
      for (let x = 0; x < cw; x++, dst += 3) {
        const s = src + (sy * set.width + Math.floor(x / scale)) * 3;
        canvas[dst] = set.images[s];
        canvas[dst + 1] = set.images[s + 1];
        canvas[dst + 2] = set.images[s + 2];
      }
    }
  });

  let img = sharp(canvas, { raw: { width: W, height: H, channels: 3 } });
  if (hasCaptions) {
    const texts = captions.map((c, j) => {
      const x = gap + (j % columns) * (cw + gap) + cw / 2;
      const y = gap + Math.floor(j / columns) * (ch + captionH + gap) + ch + fontSize * 1.15;
      return `<text x="${x}" y="${y}" text-anchor="middle">${xmlEscape(fitCaption(c, cw, fontSize))}</text>`;
    });
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
      `<g font-family="DejaVu Sans, Arial, sans-serif" font-size="${fontSize}" fill="#111">${texts.join('')}</g></svg>`;
    img = img.composite([{ input: Buffer.from(svg), top: 0, left: 0 }]);
  }
  return img.png().toBuffer();
}

/**
 * Builds the grid and shows it (notebook: inline PNG; elsewhere: a size note). Returns nothing on purpose:
 * tslab prints a cell's last expression, so a returned Buffer showed as `<Buffer 89 50 4e 47 ...>` under
 * every grid. Use `imageGridPng` for the bytes.
 */
export async function showImageGrid(set: ImageSet, opts: ImageGridOptions = {}): Promise<void> {
  showPng(await imageGridPng(set, opts));
}
