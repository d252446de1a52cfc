import * as fs from 'fs';
import { loadNpd, LoadSummary } from '../data/npd';
import { HttpOracle } from '../oracle/client';
import { LocalOracle } from '../oracle/local';
import { startOracleServer } from '../oracle/server';
import type { Oracle } from '../oracle/types';
import { readJson, Run, writeJson } from '../run';
import { buildNpdSl, buildPdSl, discardLabels, LabelHistogram, labelHistogram, StolenLabelSet } from '../stolenLabels';
import { CIFAR10_CLASSES, ImageSet } from '../types';
import { cifarForRun } from './oracleStep';
import { subsetImages } from './subset';

/** The NPD images of a run (decoded once, then read from the uint8 cache). */
export async function npdForRun(run: Run, log?: (s: string) => void): Promise<ImageSet & { summary: LoadSummary }> {
  const d = run.config.data;
  // The config keeps the source as plain JSON; loadNpd validates the kind and names what it expects.
  const npd = await loadNpd(d.npdSource as Parameters<typeof loadNpd>[0], {
    size: d.imageSize,
    maxImages: d.npdImages ?? undefined,
    seed: run.config.seed,
    log,
  });
  return npd;
}

/**
 * Problem-domain images for PD-SL: CIFAR-10 training images with their ground truth discarded before
 * the oracle sees them (the attacker only learns what the oracle answers).
 */
export async function pdForRun(run: Run): Promise<ImageSet> {
  const { train } = await cifarForRun(run);
  return discardLabels(subsetImages(train, run.config.data.pdImages, run.config.seed + 1));
}

export interface StealSummary {
  oracle: StolenLabelSet['oracle'];
  /**
   * Per set; `file` is relative to the run directory. `askedThisCall` is of the call that wrote
   * summary.json: a rerun that gets the same answers leaves the file as it is (as labelImages does).
   */
  sets: Record<string, { n: number; queries: number; askedThisCall: number; costUsd: number; histogram: LabelHistogram; file: string }>;
  totalQueries: number;
  totalCostUsd: number;
}

/** The black box the attacker queries: the run's oracle model behind the answer mode of the config. */
export async function oracleForRun(run: Run): Promise<LocalOracle> {
  const q = run.config.query;
  return LocalOracle.fromDir(run.path('oracle', 'model'), {
    answer: q.mode, pricePer1000: q.pricePer1000, batchSize: q.batchSize, name: `oracle of run ${run.name}`, classNames: [...CIFAR10_CLASSES],
  });
}

/**
 * Queries the oracle with the NPD images and the PD images and stores the stolen labels under stolen/.
 * Answers are cached by image content, so a killed run resumes without paying twice.
 */
export async function stealLabels(run: Run, opts: { oracle?: Oracle; log?: (s: string) => void } = {}): Promise<StealSummary> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const own = opts.oracle ? undefined : await oracleForRun(run);
  const oracle = opts.oracle ?? (own as LocalOracle);
  const npd = await npdForRun(run, log);
  const pd = await pdForRun(run);
  const common = { runDir: run.dir, batchSize: run.config.query.batchSize };
  let npdSl: Awaited<ReturnType<typeof buildNpdSl>>;
  let pdSl: Awaited<ReturnType<typeof buildPdSl>>;
  try {
    npdSl = await buildNpdSl(oracle, npd, common);
    pdSl = await buildPdSl(oracle, pd, common);
  } finally {
    own?.dispose();
  }
  const sets: StealSummary['sets'] = {};
  for (const s of [npdSl.stolen, pdSl.stolen]) {
    sets[s.name] = {
      n: s.n, queries: s.queries.distinct, askedThisCall: s.queries.askedThisCall, costUsd: s.cost.usd,
      histogram: labelHistogram(s.labels, CIFAR10_CLASSES), file: `stolen/${s.name}.json`,
    };
  }
  const summary: StealSummary = {
    oracle: npdSl.stolen.oracle,
    sets,
    totalQueries: npdSl.stolen.queries.distinct + pdSl.stolen.queries.distinct,
    totalCostUsd: npdSl.stolen.cost.usd + pdSl.stolen.cost.usd,
  };
  const file = run.path('stolen', 'summary.json');
  if (!sameSummary(file, summary)) writeJson(file, summary);
  log(`Stolen labels: NPD-SL ${npdSl.stolen.n} images, PD-SL ${pdSl.stolen.n} images; ${summary.totalQueries} queries, $${summary.totalCostUsd.toFixed(2)}`);
  return summary;
}

function sameSummary(file: string, now: StealSummary): boolean {
  const stable = (s: StealSummary): string =>
    JSON.stringify({ ...s, sets: Object.fromEntries(Object.entries(s.sets).map(([k, v]) => [k, { ...v, askedThisCall: undefined }])) });
  try {
    return fs.existsSync(file) && stable(JSON.parse(fs.readFileSync(file, 'utf8'))) === stable(now);
  } catch {
    return false;
  }
}

export function readStealSummary(run: Run): StealSummary {
  return readJson<StealSummary>(run.path('stolen', 'summary.json'), 'stolen-label summary');
}

/**
 * The attacker's handle on the run's oracle: in-process ('local'), or through the kit's HTTP server
 * started on 127.0.0.1 and queried like a cloud API ('http'). `close()` stops the server.
 */
export async function attackerOracle(run: Run, kind: 'local' | 'http' = 'local'): Promise<{ oracle: Oracle; url?: string; close: () => Promise<void> }> {
  if (kind === 'local') {
    const local = await oracleForRun(run);
    return { oracle: local, close: async () => local.dispose() };
  }
  if (kind !== 'http') throw new Error(`attackerOracle: kind must be 'local' or 'http', got '${kind}'`);
  const q = run.config.query;
  const key = 'attacker-key';
  const served = await oracleForRun(run);
  const server = await startOracleServer({ oracle: served, keys: [key], log: false });
  const close = async (): Promise<void> => {
    await server.close();
    served.dispose();
  };
  try {
    const oracle = await HttpOracle.connect({ url: server.url, apiKey: key, pricePer1000: q.pricePer1000, answer: q.mode });
    return { oracle, url: server.url, close };
  } catch (e) {
    await close();
    throw e;
  }
}
