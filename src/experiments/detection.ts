import seedrandom from 'seedrandom';
import { backendReport } from '../platform/backend';
import { PradaDetector, pradaFeatures, type PradaConfig } from '../defender/prada';
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
  /** Shapiro-Wilk W at the end of the stream (the first key's). */
  finalW: number | null;
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
  /** Queries per stream (default 10,000, or the run's NPD images when it has fewer). */
  queries?: number;
  /** Keys the many-keys honest stream is spread over (default 20). */
  honestKeys?: number;
  detectors?: { name: string; prada: Partial<PradaConfig> }[];
  /** Requests of the cost measurement (default 40 of 64 images). */
  costRequests?: number;
  log?: (s: string) => void;
}

export const DEFAULT_DETECTORS = [
  { name: 'PRADA (full 32x32 input)', prada: {} },
  { name: 'PRADA (8x8 average)', prada: { side: 8 } },
];

function shuffledOrder(n: number, seed: string): number[] {
  const rng = seedrandom(seed);
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Feeds one key's stream to a fresh detector. */
function watch(images: ImageSet, labels: Uint8Array, prada: Partial<PradaConfig>): { flaggedAt: number | null; w: number | null; ms: number } {
  const d = new PradaDetector(prada);
  const px = images.height * images.width * 3;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < images.n; i++) d.observe(pradaFeatures(images.images.subarray(i * px, (i + 1) * px), images.height, images.width, d.cfg.side), labels[i]);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { flaggedAt: d.state.flaggedAt, w: d.state.w, ms };
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
  const honest = take(test, want, 'detect/honest');
  const streams: { stream: string; kind: 'attack' | 'honest'; images: ImageSet }[] = [
    { stream: 'NPD attack (Tiny ImageNet)', kind: 'attack', images: npdStream },
    { stream: 'PD attack (CIFAR-10 train)', kind: 'attack', images: pdStream },
    { stream: 'PD + NPD interleaved', kind: 'attack', images: mixed },
    { stream: 'honest (CIFAR-10 test, one key)', kind: 'honest', images: honest },
  ];
  const model = await loadOracleModel(run);
  const labelsOf = async (s: ImageSet) => argmaxRows(await predictProbabilities(model, s), 10);
  const labeled: { s: (typeof streams)[number]; labels: Uint8Array }[] = [];
  try {
    for (const s of streams) labeled.push({ s, labels: await labelsOf(s.images) });
  } finally {
    model.dispose();
  }
  const keys = opts.honestKeys ?? 20;
  const rows: DetectionRow[] = [];
  for (const det of opts.detectors ?? DEFAULT_DETECTORS) {
    for (const { s, labels } of labeled) {
      const r = watch(s.images, labels, det.prada);
      rows.push({ stream: s.stream, kind: s.kind, detector: det.name, keys: 1, queries: s.images.n, flaggedAt: r.flaggedAt, keysFlagged: r.flaggedAt === null ? 0 : 1, finalW: r.w, msPerQuery: r.ms / s.images.n });
      log(`detect: ${det.name} on ${s.stream}: ${r.flaggedAt === null ? 'no alarm' : `alarm at query ${r.flaggedAt}`} (W ${r.w?.toFixed(3)})`);
    }
    // Honest traffic spread over many keys: each key sees a short, independent stream.
    const h = labeled.find((l) => l.s.kind === 'honest')!;
    const per = Math.floor(h.s.images.n / keys);
    let flagged = 0;
    let earliest: number | null = null;
    let ms = 0;
    for (let k = 0; k < keys; k++) {
      const idx = Array.from({ length: per }, (_, i) => k * per + i);
      const r = watch(pickImages(h.s.images, idx), Uint8Array.from(idx, (i) => h.labels[i]), det.prada);
      ms += r.ms;
      if (r.flaggedAt !== null) {
        flagged++;
        earliest = earliest === null ? r.flaggedAt : Math.min(earliest, r.flaggedAt);
      }
    }
    rows.push({ stream: `honest (CIFAR-10 test, ${keys} keys)`, kind: 'honest', detector: det.name, keys, queries: per * keys, flaggedAt: earliest, keysFlagged: flagged, finalW: null, msPerQuery: ms / (per * keys) });
  }
  const cost: MonitorCostRow[] = [];
  for (const det of opts.detectors ?? DEFAULT_DETECTORS) cost.push(await monitorCost(run, honest, det, opts.costRequests ?? 40));
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
async function monitorCost(run: Run, honest: ImageSet, det: { name: string; prada: Partial<PradaConfig> }, requests: number): Promise<MonitorCostRow> {
  const per = 64;
  const bodies: string[] = [];
  for (let r = 0; r < requests; r++) {
    const imgs: string[] = [];
    for (let i = 0; i < per; i++) imgs.push((await encodePng(honest.images, (r * per + i) % honest.n, honest.height, honest.width)).toString('base64'));
    bodies.push(JSON.stringify({ images: imgs }));
  }
  const median = (xs: number[]) => xs.slice().sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  const timeWith = async (monitor: boolean): Promise<number> => {
    const oracle = await LocalOracle.fromDir(oracleModelDir(run), { answer: 'label' });
    const srv = await startOracleServer({ oracle, keys: ['sk-cost'], log: false, ...(monitor ? { monitor: { prada: det.prada } } : {}) });
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
  return { detector: det.name, requests, imagesPerRequest: per, offMs, onMs, overhead: onMs / offMs - 1, backend: backendReport().label };
}
