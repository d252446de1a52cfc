import * as fs from 'fs';
import * as path from 'path';
import { HttpOracle } from '../oracle/client';
import { LocalOracle } from '../oracle/local';
import { startOracleServer } from '../oracle/server';
import type { Oracle } from '../oracle/types';
import { readJson, Run, stolenFile, writeJson } from '../run';
import { buildNpdSl, buildPdSl, labelHistogram, loadStolenLabels, StolenLabelSet, stolenSetSummary, type StolenSetSummary } from '../stolenLabels';
import { CIFAR10_CLASSES } from '../types';
import { npdForRun, pdForRun, stepLog } from './inputs';
import { answersFileFor, beginVariant, isFinished, oracleVariant, outsideStolenFile, selectionActive, StolenSetName, stolenVariant, type Variant } from './variants';
import { RoundsSummary, stealNpdInRounds } from './activeStealing';

export interface StealSummary {
  oracle: StolenLabelSet['oracle'];
  /**
   * Per set; `file` is relative to the run directory. `askedThisCall` is of the call that made the
   * set (a reused set reports what was asked when it was made).
   */
  sets: Record<string, StolenSetSummary & { selection?: RoundsSummary }>;
  totalQueries: number;
  totalCostUsd: number;
}

/** The black box the attacker queries: the run's oracle model behind the answer mode of the config. */
export async function oracleForRun(run: Run): Promise<LocalOracle> {
  const q = run.config.query;
  const v = oracleVariant(run);
  if (!isFinished(v)) throw new Error(`the oracle of these settings (key ${v.key}) is not trained yet: run notebook 01 (trainOracle) with the same profile and overrides first`);
  return LocalOracle.fromDir(v.model, {
    answer: q.mode, pricePer1000: q.pricePer1000, batchSize: q.batchSize, name: `oracle of run ${run.name}`, classNames: [...CIFAR10_CLASSES],
  });
}

/**
 * Queries the oracle with the NPD images and the PD images and stores each stolen-label set in its
 * variant folder (stolen/<set>/<key>/). A finished set is reused without asking anything; answers are
 * cached by image content per oracle and answer mode, so a killed run resumes without paying twice
 * and a new subset of images pays only for the images not asked before.
 */
export async function stealLabels(
  run: Run,
  opts: { oracle?: Oracle; log?: (s: string) => void; force?: boolean; signal?: AbortSignal; /** Default both. */ sets?: StolenSetName[] } = {},
): Promise<StealSummary> {
  const log = stepLog(opts);
  let own: LocalOracle | undefined;
  const sets: StealSummary['sets'] = {};
  let info: StealSummary['oracle'] | undefined;
  try {
    for (const name of opts.sets ?? (['NPD-SL', 'PD-SL'] as const)) {
      const v = stolenVariant(run, name);
      const verb = outsideStolenFile(run, name) ? 'taking the outside set' : 'querying the oracle';
      if (beginVariant(v, { label: `stolen ${name}`, force: opts.force, log, verb }) === 'reuse') {
        const stolen = loadStolenLabels(stolenFile(v.dir, name));
        // The histogram is recomputed: JSON keeps an unbounded most/least ratio (a class never answered) as null.
        sets[name] = { ...readJson<StolenSetSummary>(v.result, `stolen ${name} summary`), histogram: labelHistogram(stolen.labels, CIFAR10_CLASSES) };
        info ??= stolen.oracle;
        continue;
      }
      const file = stolenFile(v.dir, name);
      const outside = outsideStolenFile(run, name);
      let stolen: StolenLabelSet;
      let rounds: RoundsSummary | undefined;
      if (outside) {
        stolen = importOutsideSet(v, name, outside, log);
        info ??= stolen.oracle;
      } else {
        const oracle = opts.oracle ?? (own ??= await oracleForRun(run));
        // signal: stop between requests (stopOnSignals), with every answer paid so far on disk.
        const common = { cacheFile: answersFileFor(run), outFile: file, batchSize: run.config.query.batchSize, signal: opts.signal };
        if (name === 'NPD-SL' && selectionActive(run.config)) {
          ({ stolen, summary: rounds } = await stealNpdInRounds(run, v, oracle, common, log));
        } else {
          stolen = (name === 'NPD-SL' ? await buildNpdSl(oracle, await npdForRun(run, log), common) : await buildPdSl(oracle, await pdForRun(run), common)).stolen;
        }
        info = stolen.oracle;
      }
      // A set taken in from elsewhere asked nothing in this run; one bought in rounds asked in its rounds.
      const asked = outside ? 0 : rounds ? rounds.rounds.reduce((t, x) => t + x.paid, 0) : undefined;
      sets[name] = { ...stolenSetSummary(stolen, path.relative(run.dir, file), v.key, asked), ...(rounds ? { selection: rounds } : {}) };
      writeJson(v.result, sets[name]);
    }
  } finally {
    own?.dispose();
  }
  const summary: StealSummary = {
    oracle: info!,
    sets,
    totalQueries: Object.values(sets).reduce((t, s) => t + s.queries, 0),
    totalCostUsd: Object.values(sets).reduce((t, s) => t + s.costUsd, 0),
  };
  log(`Stolen labels: ${Object.entries(sets).map(([k, s]) => `${k} ${s.n} images`).join(', ')}; ${summary.totalQueries} queries, $${summary.totalCostUsd.toFixed(2)}`);
  return summary;
}

/**
 * Takes a stolen set made by `npm run steal` against an outside black box into the run as this set's
 * variant (a copy, so the run keeps it even if the file moves). Returns the set.
 */
function importOutsideSet(v: Variant, name: StolenSetName, file: string, log: (s: string) => void): StolenLabelSet {
  const s = loadStolenLabels(file);
  fs.mkdirSync(v.dir, { recursive: true });
  fs.copyFileSync(file, stolenFile(v.dir, name));
  log(`stolen ${name}: ${s.n} labels from ${file} (answered by ${s.oracle.name}, ${s.queries.distinct} paid queries)`);
  return s;
}

/** The stolen-label set of the run's config (an error says which notebook makes it). */
export function readStolenLabels(run: Run, set: StolenSetName): StolenLabelSet {
  const v = stolenVariant(run, set);
  if (!isFinished(v)) throw new Error(`stolen ${set} of these settings (key ${v.key}) not found in ${v.dir}: run notebook 02 (stealLabels) with the same profile and overrides first`);
  return loadStolenLabels(stolenFile(v.dir, set));
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
