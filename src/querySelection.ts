import seedrandom from 'seedrandom';
import { shuffledIndices } from './train/sampler';

/**
 * Which images to pay for next (issue 52): the attacker holds many more natural images than it can
 * afford to label, and a copy trained on the answers bought so far can point at the ones worth asking.
 * Each strategy ranks the candidates not yet bought and takes the next slice of the budget.
 *
 * - random: today's choice (a seeded draw), the baseline every report compares with;
 * - balanced: seek the classes the stolen labels lack (the oracle calls a quarter of Tiny ImageNet
 *   'frog' and 3 % 'dog'), by the copy's guess of what the oracle will answer;
 * - entropy / margin: where the copy is least sure (uncertainty sampling, Lewis & Gale 1994; margin as
 *   in Scheffer et al. 2001), i.e. near its decision boundaries;
 * - kcenter: the k-center greedy coreset of Sener & Savarese (ICLR 2018) in the copy's feature space:
 *   cover the candidates so that none is far from an image already bought.
 * Published extraction results disagree on whether the active ones beat random; the kit measures it.
 */
export const SELECTION_STRATEGIES = ['random', 'balanced', 'entropy', 'margin', 'kcenter'] as const;
export type SelectionStrategy = (typeof SELECTION_STRATEGIES)[number];

export interface SelectionConfig {
  strategy: SelectionStrategy;
  /** Rounds the budget is bought in (the first is always a random slice); 1 = all at once. */
  rounds: number;
  /** Epochs of the copy trained on what is bought before each later round (the copycat recipe otherwise). */
  roundEpochs: number;
  /** kcenter: candidates looked at per round (a seeded sample; the greedy cost grows with it). */
  kcenterCandidates: number;
  /**
   * The attacker's collection to choose from: a seeded subset of this many images of data.npdSource
   * (prefix-stable, so the first round's random slice is in it); null = every image the source holds.
   */
  candidates: number | null;
}

export const DEFAULT_SELECTION: SelectionConfig = { strategy: 'random', rounds: 4, roundEpochs: 4, kcenterCandidates: 20000, candidates: null };

/** Fills in defaults and validates, naming the field. */
export function resolveSelection(c: Partial<SelectionConfig> | null | undefined): SelectionConfig {
  const s: SelectionConfig = { ...DEFAULT_SELECTION, ...(c ?? {}) };
  const f = 'query.selection';
  if (!(SELECTION_STRATEGIES as readonly string[]).includes(s.strategy)) throw new Error(`${f}.strategy must be one of ${SELECTION_STRATEGIES.join(', ')}, got ${JSON.stringify(s.strategy)}`);
  for (const k of ['rounds', 'roundEpochs', 'kcenterCandidates'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new Error(`${f}.${k} must be an integer >= 1, got ${JSON.stringify(s[k])}`);
  }
  if (s.candidates !== null && (!Number.isInteger(s.candidates) || s.candidates < 1)) throw new Error(`${f}.candidates must be an integer >= 1 or null (all the source holds), got ${JSON.stringify(s.candidates)}`);
  return s;
}

/** Sizes of the rounds' slices: as equal as integers allow, the first ones larger. */
export function roundSizes(budget: number, rounds: number): number[] {
  const base = Math.floor(budget / rounds);
  return Array.from({ length: rounds }, (_, r) => base + (r < budget % rounds ? 1 : 0)).filter((n) => n > 0);
}

/** What a strategy sees of the candidates (indices into the candidate list, never bought yet). */
export interface SelectionInput {
  candidates: number[];
  count: number;
  /** The copy's class probabilities per candidate, row-major (candidates.length x numClasses). */
  probs?: Float32Array;
  numClasses: number;
  /** balanced: the stolen labels bought so far, per class. */
  boughtPerClass?: number[];
  /** kcenter: feature rows of the candidates and of the images bought (row-major, dim each). */
  features?: Float32Array;
  boughtFeatures?: Float32Array;
  dim?: number;
  rng: () => number;
}

/** The `count` candidates with the highest score (ties: the earlier candidate). */
function top(candidates: number[], score: (j: number) => number, count: number): number[] {
  const order = candidates.map((_, j) => j).sort((a, b) => score(b) - score(a) || a - b);
  return order.slice(0, count).map((j) => candidates[j]);
}

/** `xs` in a seeded random order (the training sampler's Fisher-Yates shuffle). */
const shuffled = <T>(xs: T[], rng: () => number): T[] => Array.from(shuffledIndices(xs.length, rng), (i) => xs[i]);

function needProbs(s: SelectionInput, strategy: string): Float32Array {
  if (!s.probs || s.probs.length !== s.candidates.length * s.numClasses) throw new Error(`select ${strategy}: needs the copy's probabilities for every candidate (${s.candidates.length} x ${s.numClasses})`);
  return s.probs;
}

export function entropyScores(probs: Float32Array, k: number): Float32Array {
  const n = probs.length / k;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let h = 0;
    for (let c = 0; c < k; c++) {
      const p = probs[i * k + c];
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}

/** Top-1 minus top-2 probability per row (small = unsure). */
export function marginScores(probs: Float32Array, k: number): Float32Array {
  const n = probs.length / k;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let a = -1, b = -1;
    for (let c = 0; c < k; c++) {
      const p = probs[i * k + c];
      if (p > a) { b = a; a = p; } else if (p > b) b = p;
    }
    out[i] = a - b;
  }
  return out;
}

/**
 * Class-balance seeking: each class gets a share of the slice in proportion to how far it is below an
 * even split of (bought + slice); within a class, the candidates the copy most confidently puts there.
 * What is left (a class short of candidates) goes to the most confident remaining ones.
 */
function balanced(s: SelectionInput): number[] {
  const probs = needProbs(s, 'balanced');
  const k = s.numClasses;
  const have = s.boughtPerClass ?? new Array<number>(k).fill(0);
  const target = (have.reduce((t, v) => t + v, 0) + s.count) / k;
  const deficit = have.map((h) => Math.max(0, target - h));
  const total = deficit.reduce((t, v) => t + v, 0) || 1;
  const quota = deficit.map((d) => Math.floor((s.count * d) / total));
  const byClass: { j: number; p: number }[][] = Array.from({ length: k }, () => []);
  s.candidates.forEach((_, j) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[j * k + c] > probs[j * k + best]) best = c;
    byClass[best].push({ j, p: probs[j * k + best] });
  });
  const taken = new Set<number>();
  for (let c = 0; c < k; c++) {
    byClass[c].sort((a, b) => b.p - a.p || a.j - b.j);
    for (const { j } of byClass[c].slice(0, quota[c])) taken.add(j);
  }
  if (taken.size < s.count) {
    const rest = s.candidates.map((_, j) => j).filter((j) => !taken.has(j));
    const conf = (j: number) => Math.max(...Array.from(probs.subarray(j * k, (j + 1) * k)));
    for (const j of rest.sort((a, b) => conf(b) - conf(a) || a - b).slice(0, s.count - taken.size)) taken.add(j);
  }
  return [...taken].sort((a, b) => a - b).map((j) => s.candidates[j]);
}

/**
 * Greedy k-center: repeatedly take the candidate farthest (squared Euclidean) from everything bought
 * or taken so far. O(candidates x (bought + count) x dim): the caller samples the candidates.
 */
function kcenter(s: SelectionInput): number[] {
  const { features, boughtFeatures, dim } = s;
  const n = s.candidates.length;
  if (!features || !dim || features.length !== n * dim) throw new Error(`select kcenter: needs a feature row of length dim for every candidate (${n} x ${dim})`);
  const minDist = new Float64Array(n).fill(Infinity);
  const update = (row: Float32Array, at: number) => {
    for (let j = 0; j < n; j++) {
      let d = 0;
      for (let t = 0; t < dim; t++) {
        const e = features[j * dim + t] - row[at + t];
        d += e * e;
      }
      if (d < minDist[j]) minDist[j] = d;
    }
  };
  const bought = boughtFeatures ?? new Float32Array(0);
  for (let at = 0; at < bought.length; at += dim) update(bought, at);
  const out: number[] = [];
  const taken = new Uint8Array(n);
  for (let k = 0; k < Math.min(s.count, n); k++) {
    let best = -1;
    for (let j = 0; j < n; j++) if (!taken[j] && (best < 0 || minDist[j] > minDist[best])) best = j;
    taken[best] = 1;
    out.push(s.candidates[best]);
    update(features, best * dim);
  }
  return out;
}

/** The next slice: `count` of the candidates, chosen by `strategy`. */
export function selectQueries(strategy: SelectionStrategy, s: SelectionInput): number[] {
  if (s.count > s.candidates.length) throw new Error(`select ${strategy}: ${s.count} images asked for but only ${s.candidates.length} candidates are left`);
  switch (strategy) {
    case 'random':
      return shuffled(s.candidates, s.rng).slice(0, s.count);
    case 'entropy': {
      const h = entropyScores(needProbs(s, strategy), s.numClasses);
      return top(s.candidates, (j) => h[j], s.count);
    }
    case 'margin': {
      const m = marginScores(needProbs(s, strategy), s.numClasses);
      return top(s.candidates, (j) => -m[j], s.count);
    }
    case 'balanced':
      return balanced(s);
    case 'kcenter':
      return kcenter(s);
  }
}

/** A seeded sample of `n` of the candidates (all when there are fewer), in their order. */
export function sampleCandidates(candidates: number[], n: number, seed: string): number[] {
  if (candidates.length <= n) return candidates;
  return shuffled(candidates, seedrandom(seed)).slice(0, n).sort((a, b) => a - b);
}
