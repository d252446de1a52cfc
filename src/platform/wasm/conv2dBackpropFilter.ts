import * as tf from '@tensorflow/tfjs';
import { WasmBackend, alloc, f32, free, freeView, runOriginal, viewOf } from './wasmHeap';

/**
 * dFilter of a convolution, which tfjs-backend-wasm 4.22 lacks entirely, as XNNPACK matrix products:
 *
 *   dW[a, b, c, f] = sum over (n, o, p) of x[n, o*s + a - padTop, p*s + b - padLeft, c] * dy[n, o, p, f]
 *
 * x is copied once per chunk of images into a channel-major, zero-padded layout (one copy per stride
 * phase), and dy onto a grid of the same row pitch. Every filter tap (a, b) is then one plain product
 * [C, K] x [K, F] whose left operand is the x copy read at offset (a/s)*pitch + b/s: no im2col copy,
 * and dy is packed by XNNPACK once per chunk for all taps. Chunks keep K near a few thousand so both
 * operands stay in L2; a single long-K product (or the same reduction phrased as one big convolution)
 * streams them from memory for every output tile and ran ~2x slower than the forward convolution.
 */

/** Target reduction length per product (images per chunk * padded grid size). */
const TARGET_K = 4096;

export interface FilterGradGeometry {
  n: number; h: number; w: number; c: number; f: number;
  kh: number; kw: number; sh: number; sw: number;
  ho: number; wo: number; padTop: number; padLeft: number;
}

/** Rows/cols of one stride phase of x on the dy grid, big enough for every tap of every output pixel. */
export function phaseGrid(g: FilterGradGeometry): { hq: number; wq: number } {
  return { hq: g.ho + Math.floor((g.kh - 1) / g.sh), wq: g.wo + Math.floor((g.kw - 1) / g.sw) };
}

/**
 * xph[pa, pb][c, m, i, j] = x[n0 + m, i*sh + pa - padTop, j*sw + pb - padLeft, c] (0 outside x), for the
 * `nb` images from n0; `out` is [sh*sw, C, nb*hq*wq] plus slack and must be zero-filled.
 */
function fillPhases(xv: Float32Array, g: FilterGradGeometry, n0: number, nb: number, hq: number, wq: number, out: Float32Array): void {
  const { h, w, c, sh, sw, padTop, padLeft } = g;
  const plane = nb * hq * wq;
  for (let m = 0; m < nb; m++) {
    for (let r = 0; r < h; r++) {
      const rp = r + padTop;
      const pa = rp % sh;
      const i = (rp - pa) / sh;
      if (i >= hq) continue;
      const rowBase = ((n0 + m) * h + r) * w * c;
      for (let col = 0; col < w; col++) {
        const cp = col + padLeft;
        const pb = cp % sw;
        const j = (cp - pb) / sw;
        if (j >= wq) continue;
        const src = rowBase + col * c;
        let dst = (pa * sw + pb) * c * plane + (m * hq + i) * wq + j;
        for (let ch = 0; ch < c; ch++, dst += plane) out[dst] = xv[src + ch];
      }
    }
  }
}

/** dyG[m, o, p, :] = dy[n0 + m, o, p, :] on the [nb, hq, wq] grid, zero elsewhere (out zero-filled). */
function fillDyGrid(dyv: Float32Array, g: FilterGradGeometry, n0: number, nb: number, hq: number, wq: number, out: Float32Array): void {
  const { ho, wo, f } = g;
  for (let m = 0; m < nb; m++) {
    for (let o = 0; o < ho; o++) {
      const src = ((n0 + m) * ho + o) * wo * f;
      out.set(dyv.subarray(src, src + wo * f), (m * hq + o) * wq * f);
    }
  }
}

export function conv2dBackpropFilterWasm(
  backend: WasmBackend,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: tf.Conv2DBackpropFilterAttrs,
): tf.TensorInfo {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') throw new Error(`wasm Conv2DBackpropFilter: dataFormat '${dataFormat}' unsupported, use NHWC`);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, fmt,
  );
  const g: FilterGradGeometry = {
    n: info.batchSize, h: info.inHeight, w: info.inWidth, c: info.inChannels, f: info.outChannels,
    kh: info.filterHeight, kw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
    ho: info.outHeight, wo: info.outWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left,
  };
  const { n, c, f, kh, kw, sh, sw, ho, wo } = g;
  if (dy.shape[0] !== n || dy.shape[1] !== ho || dy.shape[2] !== wo || dy.shape[3] !== f) {
    throw new Error(`wasm Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the forward output [${n},${ho},${wo},${f}]`);
  }
  const { hq, wq } = phaseGrid(g);
  const nb = Math.max(1, Math.min(n, Math.round(TARGET_K / (hq * wq))));
  // Taps read up to this far past the end of a phase block; the tail only ever meets zero dy.
  const slack = Math.floor((kh - 1) / sh) * wq + Math.floor((kw - 1) / sw);

  const acc = new Float64Array(kh * kw * c * f);
  for (let n0 = 0; n0 < n; n0 += nb) {
    const m = Math.min(nb, n - n0);
    const k = m * hq * wq;
    const xph = alloc(backend, [sh * sw * c * k + slack]);
    const dyG = alloc(backend, [1, k, f]);
    const xphv = f32(backend, xph);
    const dyGv = f32(backend, dyG);
    xphv.fill(0);
    dyGv.fill(0);
    fillPhases(f32(backend, x), g, n0, m, hq, wq, xphv);
    fillDyGrid(f32(backend, dy), g, n0, m, hq, wq, dyGv);
    for (let a = 0; a < kh; a++) {
      for (let b = 0; b < kw; b++) {
        const phase = (a % sh) * sw + (b % sw);
        const offset = phase * c * k + Math.floor(a / sh) * wq + Math.floor(b / sw);
        const left = viewOf(backend, xph, offset, [1, c, k]);
        const prod = runOriginal(tf.BatchMatMul, {
          inputs: { a: left, b: dyG }, backend, attrs: { transposeA: false, transposeB: false },
        });
        freeView(backend, left);
        const pv = f32(backend, prod);
        const base = (a * kw + b) * c * f;
        for (let i = 0; i < c * f; i++) acc[base + i] += pv[i];
        free(backend, prod);
      }
    }
    free(backend, xph, dyG);
  }
  const dw = alloc(backend, [kh, kw, c, f]);
  f32(backend, dw).set(acc);
  return dw;
}

export const conv2dBackpropFilterKernel: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend, attrs }) =>
    conv2dBackpropFilterWasm(
      backend as WasmBackend,
      inputs.x as tf.TensorInfo,
      inputs.dy as tf.TensorInfo,
      attrs as unknown as tf.Conv2DBackpropFilterAttrs,
    ),
};
