import seedrandom from 'seedrandom';
import { backendReport } from '../platform/backend';
import type { PradaConfig } from '../defender/prada';
import { calibrateMaxRate, type ConfidenceConfig } from '../defender/confidence';
import { KeyMonitor, type MonitorOptions } from '../defender/monitor';
import { encodePng } from '../oracle/decode';
import { LocalOracle } from '../oracle/local';
import { startOracleServer } from '../oracle/server';
import { argmaxRows, predictProbabilities } from '../preprocess';
import type { Run } from '../run';
import { cifarForRun, npdForRun } from '../steps/inputs';
import { loadOracleModel, oracleModelDir } from '../steps/oracleStep';
import { pickImages } from '../data/split';
import { loadCifar10 } from '../data/cifar10';
import { ImageSet } from '../types';
import { shuffledIndices } from '../train/sampler';

/**
 * Issue 53, detection: how many queries each attack gets through before PRADA raises its key's alarm,
 * whether honest traffic raises it, and what watching costs the server. The streams are the kit's own
 * attacks (its NPD images, CIFAR-10 training images as PD queries, both interleaved) and honest users
 * (CIFAR-10 test images in random order, from one key and spread over many), each labeled by the run's
 * oracle as the server would answer.
 */

export interface DetectionRow {
  stream: string;
  /** 'attack' rows should be flagged early; 'honest' rows never. */
  kind: 'attack' | 'honest';
  detector: string;
  keys: number;
  queries: number;
  /** Query (1-based, per key) at which the alarm came; null: never. With several keys: the earliest. */
  flaggedAt: number | null;
  /** Keys whose alarm came (honest: false alarms). */
  keysFlagged: number;
  /** Shapiro-Wilk W at the end of the stream (PRADA; the first key's). */
  finalW: number | null;
  /** Unsure share of the last window at the end of the stream (confidence watch; the first key's). */
  finalRate: number | null;
  /** Monitor time per query, milliseconds. */
  msPerQuery: number;
}

export interface MonitorCostRow {
  detector: string;
  requests: number;
  imagesPerRequest: number;
  /** Median latency of a batch request without and with the monitor, ms, over the last half of the requests. */
  offMs: number;
  onMs: number;
  /** onMs / offMs - 1. */
  overhead: number;
  backend: string;
}

export interface DetectionOptions {
  /**
   * Queries per stream (default 10,000, or the run's NPD images when it has fewer); the honest stream is
   * at most the half of the test images not used to calibrate the confidence watch.
   */
  queries?: number;
  /** Keys the many-keys honest stream is spread over (default 20). */
  honestKeys?: number;
  detectors?: Detector[];
  /** Requests of the cost measurement (default 40 of 64 images). */
  costRequests?: number;
  log?: (s: string) => void;
}

/** One detector of the experiment: PRADA's or the confidence watch's settings (maxRate is calibrated). */
export interface Detector {
  name: string;
  prada?: Partial<PradaConfig>;
  confidence?: Omit<ConfidenceConfig, 'maxRate'>;
}

export const DEFAULT_DETECTORS: Detector[] = [
  { name: 'PRADA (full 32x32 input)', prada: {} },
  { name: 'PRADA (8x8 average)', prada: { side: 8 } },
  { name: 'confidence (top p < 0.5, window 200)', confidence: { threshold: 0.5, window: 200 } },
];

const shuffledOrder = (n: number, seed: string): number[] => Array.from(shuffledIndices(n, seedrandom(seed)));

/** Feeds one key's stream (images, the oracle's labels and top probabilities) to a fresh monitor. */
function watch(images: ImageSet, labels: Uint8Array, top: Float32Array, monitor: MonitorOptions): { flaggedAt: number | null; w: number | null; rate: number | null; ms: number } {
  const m = new KeyMonitor(monitor);
  const px = images.height * images.width * 3;
  const t0 = process.hrtime.bigint();
  // One query at a time, as a stream of single-image requests would arrive.
  for (let i = 0; i < images.n; i++) m.observe(images.images.subarray(i * px, (i + 1) * px), 1, images.height, images.width, [labels[i]], Float32Array.of(top[i]));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const st = m.stats();
  return { flaggedAt: st.flaggedAt, w: st.prada?.w ?? null, rate: st.confidence?.rate ?? null, ms };
}

/** The monitor options of a detector, its confidence alarm level calibrated on honest top probabilities. */
function monitorOf(d: Detector, calibration: Float32Array): MonitorOptions {
  if (d.confidence) {
    const { maxRate } = calibrateMaxRate(calibration, d.confidence.threshold, d.confidence.window);
    return { prada: null, confidence: { ...d.confidence, maxRate } };
  }
  return { prada: d.prada ?? {} };
}

export async function detectionExperiment(run: Run, opts: DetectionOptions = {}): Promise<{ rows: DetectionRow[]; cost: MonitorCostRow[] }> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const npd = await npdForRun(run, log);
  const want = opts.queries ?? Math.min(10000, npd.n);
  const { train: cifarTrain } = await loadCifar10();
  const { test } = await cifarForRun(run);
  const take = (set: ImageSet, n: number, seed: string): ImageSet => pickImages(set, shuffledOrder(set.n, seed).slice(0, Math.min(n, set.n)));
  const npdStream = take(npd, want, 'detect/npd');
  const pdStream = take(cifarTrain, want, 'detect/pd');
  const mixedIdx = Array.from({ length: Math.min(npdStream.n, pdStream.n) * 2 }, (_, i) => i).slice(0, want);
  const mixed = interleave(npdStream, pdStream, mixedIdx.length);
  // The owner calibrates the confidence watch on half of its test images; honest users send the other half.
  const order = shuffledOrder(test.n, 'detect/honest');
  const calibrationSet = pickImages(test, order.slice(0, Math.floor(test.n / 2)));
  const honest = pickImages(test, order.slice(Math.floor(test.n / 2)).slice(0, want));
  const streams: { stream: string; kind: 'attack' | 'honest'; images: ImageSet }[] = [
    { stream: 'NPD attack (Tiny ImageNet)', kind: 'attack', images: npdStream },
    { stream: 'PD attack (CIFAR-10 train)', kind: 'attack', images: pdStream },
    { stream: 'PD + NPD interleaved', kind: 'attack', images: mixed },
    { stream: 'honest (CIFAR-10 test, one key)', kind: 'honest', images: honest },
    // Every test image, the calibration half included (it fixes one number, the honest unsure share): the
    // longest honest stream the owner has from one key.
    { stream: `honest (all ${test.n} CIFAR-10 test images, one key; half also calibrate)`, kind: 'honest', images: pickImages(test, order.slice(0, Math.min(want, test.n))) },
  ];
  const model = await loadOracleModel(run);
  const answer = async (s: ImageSet) => {
    const probs = await predictProbabilities(model, s);
    const k = probs.length / Math.max(1, s.n);
    const labels = argmaxRows(probs, k);
    return { labels, top: Float32Array.from(labels, (l, i) => probs[i * k + l]) };
  };
  const labeled: { s: (typeof streams)[number]; labels: Uint8Array; top: Float32Array }[] = [];
  let calibration: Float32Array;
  try {
    for (const s of streams) labeled.push({ s, ...(await answer(s.images)) });
    calibration = (await answer(calibrationSet)).top;
  } finally {
    model.dispose();
  }
  const keys = opts.honestKeys ?? 20;
  const rows: DetectionRow[] = [];
  for (const det of opts.detectors ?? DEFAULT_DETECTORS) {
    const monitor = monitorOf(det, calibration);
    for (const { s, labels, top } of labeled) {
      const r = watch(s.images, labels, top, monitor);
      rows.push({ stream: s.stream, kind: s.kind, detector: det.name, keys: 1, queries: s.images.n, flaggedAt: r.flaggedAt, keysFlagged: r.flaggedAt === null ? 0 : 1, finalW: r.w, finalRate: r.rate, msPerQuery: r.ms / s.images.n });
      log(`detect: ${det.name} on ${s.stream}: ${r.flaggedAt === null ? 'no alarm' : `alarm at query ${r.flaggedAt}`}${r.w !== null ? ` (W ${r.w.toFixed(3)})` : ''}${r.rate !== null ? ` (unsure share ${r.rate.toFixed(3)}, alarm above ${monitor.confidence!.maxRate!.toFixed(3)})` : ''}`);
    }
    // Honest traffic spread over many keys: each key sees a short, independent stream.
    const h = labeled.find((l) => l.s.stream.startsWith('honest (CIFAR-10 test, one key)'))!;
    const per = Math.floor(h.s.images.n / keys);
    let flagged = 0;
    let earliest: number | null = null;
    let ms = 0;
    for (let k = 0; k < keys; k++) {
      const idx = Array.from({ length: per }, (_, i) => k * per + i);
      const r = watch(pickImages(h.s.images, idx), Uint8Array.from(idx, (i) => h.labels[i]), Float32Array.from(idx, (i) => h.top[i]), monitor);
      ms += r.ms;
      if (r.flaggedAt !== null) {
        flagged++;
        earliest = earliest === null ? r.flaggedAt : Math.min(earliest, r.flaggedAt);
      }
    }
    rows.push({ stream: `honest (CIFAR-10 test, ${keys} keys)`, kind: 'honest', detector: det.name, keys, queries: per * keys, flaggedAt: earliest, keysFlagged: flagged, finalW: null, finalRate: null, msPerQuery: ms / (per * keys) });
  }
  const cost: MonitorCostRow[] = [];
  for (const det of opts.detectors ?? DEFAULT_DETECTORS) cost.push(await monitorCost(run, honest, det.name, monitorOf(det, calibration), opts.costRequests ?? 40));
  return { rows, cost };
}

function interleave(a: ImageSet, b: ImageSet, n: number): ImageSet {
  const px = a.height * a.width * 3;
  const images = new Uint8Array(n * px);
  for (let i = 0; i < n; i++) {
    const [src, j] = i % 2 === 0 ? [a, i / 2] : [b, (i - 1) / 2];
    images.set(src.images.subarray(j * px, (j + 1) * px), i * px);
  }
  return { images, n, height: a.height, width: a.width };
}

/** Median batch latency over the last half of `requests` requests of 64 honest images, monitor off vs on. */
async function monitorCost(run: Run, honest: ImageSet, detector: string, monitor: MonitorOptions, requests: number): Promise<MonitorCostRow> {
  const per = 64;
  const bodies: string[] = [];
  for (let r = 0; r < requests; r++) {
    const imgs: string[] = [];
    for (let i = 0; i < per; i++) imgs.push((await encodePng(honest.images, (r * per + i) % honest.n, honest.height, honest.width)).toString('base64'));
    bodies.push(JSON.stringify({ images: imgs }));
  }
  const median = (xs: number[]) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const timeWith = async (on: boolean): Promise<number> => {
    const oracle = await LocalOracle.fromDir(oracleModelDir(run), { answer: 'label' });
    const srv = await startOracleServer({ oracle, keys: ['sk-cost'], log: false, ...(on ? { monitor } : {}) });
    try {
      const ms: number[] = [];
      for (const body of bodies) {
        const t0 = performance.now();
        const res = await fetch(`${srv.url}/v1/classify/batch`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-API-Key': 'sk-cost' }, body });
        await res.text();
        if (res.status !== 200) throw new Error(`monitor cost: the server answered ${res.status}`);
        ms.push(performance.now() - t0);
      }
      return median(ms.slice(Math.floor(ms.length / 2)));
    } finally {
      await srv.close();
      oracle.dispose();
    }
  };
  const offMs = await timeWith(false);
  const onMs = await timeWith(true);
  return { detector, requests, imagesPerRequest: per, offMs, onMs, overhead: onMs / offMs - 1, backend: backendReport().label };
}
