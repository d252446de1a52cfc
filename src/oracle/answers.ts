import seedrandom from 'seedrandom';
import type { AnswerMode, AnswerSpec, OracleAnswer, TopkEntry } from './types';

/**
 * The one place where a probability vector becomes what the black box reveals. Local oracles and the
 * HTTP server both call shapeAnswers, so a server answers exactly what a local oracle would.
 *
 * Two stages, so that a later "defences" experiment can swap parts:
 *   1. transforms: probability vector -> probability vector (noise, reverse sigmoid, rounding...),
 *   2. shaping by mode: keep only the label, the top-k, or the whole (optionally rounded) vector.
 * The label is the arg-max of the vector after the transforms, i.e. what the defended service says.
 */

export const ANSWER_MODES: readonly AnswerMode[] = ['label', 'topk', 'probabilities', 'rounded'];

/** A perturbation applied to each image's probability vector before shaping. Must return a new or the same array. */
export interface AnswerTransform {
  /** Recorded with the stolen labels (e.g. "noise(sigma=0.05,seed=1)"). */
  readonly name: string;
  apply(probs: Float64Array): Float64Array;
}

/** Fills in defaults and rejects nonsense, naming the field. Accepts "label", "topk:5", "rounded:3", "probabilities". */
export function normalizeAnswerSpec(spec: AnswerSpec | AnswerMode | string | undefined): Required<Pick<AnswerSpec, 'mode'>> & AnswerSpec {
  if (spec === undefined) return { mode: 'label' };
  let s: AnswerSpec;
  if (typeof spec === 'string') {
    const [mode, arg, extra] = spec.split(':');
    if (extra !== undefined) throw new Error(`answer mode '${spec}': expected mode or mode:number (label, topk:3, probabilities, rounded:2)`);
    s = { mode: mode as AnswerMode };
    if (arg !== undefined) {
      const v = Number(arg);
      if (mode === 'topk') s.k = v;
      else if (mode === 'rounded') s.decimals = v;
      else throw new Error(`answer mode '${spec}': only topk:<k> and rounded:<decimals> take a number`);
    }
  } else {
    s = { ...spec };
  }
  if (!ANSWER_MODES.includes(s.mode)) {
    throw new Error(`answer mode '${String(s.mode)}' is not one of ${ANSWER_MODES.join(', ')}`);
  }
  if (s.mode === 'topk') {
    s.k = s.k ?? 3;
    if (!Number.isInteger(s.k) || s.k < 1) throw new Error(`answer mode topk: k must be an integer >= 1, got ${s.k}`);
  } else delete s.k;
  if (s.mode === 'rounded') {
    s.decimals = s.decimals ?? 2;
    if (!Number.isInteger(s.decimals) || s.decimals < 0 || s.decimals > 8) {
      throw new Error(`answer mode rounded: decimals must be an integer in 0..8, got ${s.decimals}`);
    }
  } else delete s.decimals;
  return s;
}

/** "label", "topk:3", "rounded:2": the compact form used in logs, file names and the CLI. */
export function formatAnswerSpec(spec: AnswerSpec): string {
  const s = normalizeAnswerSpec(spec);
  if (s.mode === 'topk') return `topk:${s.k}`;
  if (s.mode === 'rounded') return `rounded:${s.decimals}`;
  return s.mode;
}

function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
  return best;
}

function roundTo(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/**
 * Shapes a row-major probability matrix (n x numClasses) into n answers for `spec`, after `transforms`.
 */
export function shapeAnswers(
  probs: Float32Array,
  numClasses: number,
  spec: AnswerSpec | string,
  transforms: readonly AnswerTransform[] = [],
): OracleAnswer[] {
  const s = normalizeAnswerSpec(spec);
  if (!(numClasses >= 1) || probs.length % numClasses !== 0) {
    throw new Error(`shapeAnswers: ${probs.length} probabilities are not a multiple of numClasses=${numClasses}`);
  }
  const n = probs.length / numClasses;
  const out: OracleAnswer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    let p = Float64Array.from(probs.subarray(i * numClasses, (i + 1) * numClasses));
    for (const t of transforms) {
      p = t.apply(p);
      if (p.length !== numClasses) throw new Error(`answer transform ${t.name} returned ${p.length} values, expected ${numClasses}`);
    }
    const label = argmax(p);
    if (s.mode === 'label') out[i] = { label };
    else if (s.mode === 'probabilities') out[i] = { label, probs: Array.from(p) };
    else if (s.mode === 'rounded') out[i] = { label, probs: Array.from(p, (v) => roundTo(v, s.decimals!)) };
    else {
      const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
      out[i] = { label, topk: order.slice(0, Math.min(s.k!, numClasses)).map((c) => ({ label: c, p: p[c] })) };
    }
  }
  return out;
}

// ---- transforms (defences) ------------------------------------------------------------------------

/** Rounds every probability to `decimals` (Tramèr et al. 2016 studied this as a counter-measure). */
export function roundingTransform(decimals: number): AnswerTransform {
  if (!Number.isInteger(decimals) || decimals < 0) throw new Error(`roundingTransform: decimals must be an integer >= 0, got ${decimals}`);
  return { name: `round(${decimals})`, apply: (p) => p.map((v) => roundTo(v, decimals)) };
}

function renormalize(p: Float64Array): Float64Array {
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    if (p[i] < 0) p[i] = 0;
    sum += p[i];
  }
  if (sum > 0) for (let i = 0; i < p.length; i++) p[i] /= sum;
  else p.fill(1 / p.length);
  return p;
}

/**
 * Adds N(0, sigma^2) to each probability, clips at 0 and renormalises. Seeded: the same seed and the
 * same query order give the same answers (a real service would not be, but experiments must repeat).
 */
export function gaussianNoiseTransform(sigma: number, seed: string | number = 0): AnswerTransform {
  if (!(sigma >= 0)) throw new Error(`gaussianNoiseTransform: sigma must be >= 0, got ${sigma}`);
  const rng = seedrandom(String(seed));
  const normal = (): number => {
    // Box-Muller; 1 - rng() keeps log away from 0.
    return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  };
  return { name: `noise(sigma=${sigma},seed=${seed})`, apply: (p) => renormalize(p.map((v) => v + sigma * normal())) };
}

/**
 * Reverse-sigmoid perturbation (Lee et al., "Defending Against NN Model Stealing Attacks Using Deceptive
 * Perturbations", 2019): y' = normalise(y - beta * (sigmoid(gamma * logit(y)) - 1/2)). It keeps the
 * arg-max in most cases while making the probabilities misleading for training on them.
 */
export function reverseSigmoidTransform(beta: number, gamma: number): AnswerTransform {
  if (!(beta >= 0) || !(gamma > 0)) throw new Error(`reverseSigmoidTransform: need beta >= 0 and gamma > 0, got beta=${beta} gamma=${gamma}`);
  const eps = 1e-7;
  return {
    name: `reverseSigmoid(beta=${beta},gamma=${gamma})`,
    apply: (p) =>
      renormalize(
        p.map((y) => {
          const c = Math.min(1 - eps, Math.max(eps, y));
          const z = gamma * Math.log(c / (1 - c));
          return y - beta * (1 / (1 + Math.exp(-z)) - 0.5);
        }),
      ),
  };
}

// ---- reading answers back ---------------------------------------------------------------------------

/**
 * Checks an answer that came from outside (a server's JSON, a cache line) against the mode, naming
 * `where` and the field in the error: the attacker side must not silently train on garbage.
 */
export function validateAnswer(a: unknown, spec: AnswerSpec, numClasses: number | undefined, where: string): OracleAnswer {
  const s = normalizeAnswerSpec(spec);
  const bad = (msg: string): never => {
    throw new Error(`${where}: ${msg} (got ${JSON.stringify(a)?.slice(0, 200)})`);
  };
  if (typeof a !== 'object' || a === null) bad('expected an answer object {label, ...}');
  const o = a as Record<string, unknown>;
  const isClass = (v: unknown): v is number =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 && (numClasses === undefined || v < numClasses);
  if (!isClass(o.label)) bad(`'label' must be an integer class index${numClasses ? ` in 0..${numClasses - 1}` : ''}`);
  const out: OracleAnswer = { label: o.label as number };
  if (s.mode === 'probabilities' || s.mode === 'rounded') {
    if (!Array.isArray(o.probs) || o.probs.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
      bad(`mode ${s.mode} needs 'probs', an array of numbers`);
    }
    if (numClasses !== undefined && (o.probs as number[]).length !== numClasses) {
      bad(`'probs' has ${(o.probs as number[]).length} values, expected ${numClasses}`);
    }
    out.probs = o.probs as number[];
  }
  if (s.mode === 'topk') {
    if (!Array.isArray(o.topk) || o.topk.length < 1) bad(`mode topk needs 'topk', a non-empty array of {label, p}`);
    for (const e of o.topk as unknown[]) {
      const t = e as Record<string, unknown>;
      if (typeof t !== 'object' || t === null || !isClass(t.label) || typeof t.p !== 'number' || !Number.isFinite(t.p)) {
        bad(`every 'topk' entry must be {label: class index, p: number}`);
      }
    }
    out.topk = (o.topk as TopkEntry[]).map((t) => ({ label: t.label, p: t.p }));
  }
  return out;
}

/**
 * A soft-target row for training from one answer: the probabilities when the mode gave them; for
 * top-k, the k probabilities with the leftover mass spread evenly over the other classes (the answer
 * says nothing about them); undefined for 'label' (train on the hard label).
 */
export function softTargetsOf(a: OracleAnswer, numClasses: number): Float32Array | undefined {
  if (a.probs) {
    const row = Float32Array.from(a.probs);
    let sum = 0;
    for (const v of row) sum += v;
    if (sum > 0) for (let c = 0; c < numClasses; c++) row[c] /= sum; // rounding can leave 0.99 or 1.01
    return row;
  }
  if (a.topk) {
    const row = new Float32Array(numClasses);
    let mass = 0;
    for (const t of a.topk) {
      row[t.label] = t.p;
      mass += t.p;
    }
    const rest = numClasses - a.topk.length;
    if (rest > 0) {
      const each = Math.max(0, 1 - mass) / rest;
      const seen = new Set(a.topk.map((t) => t.label));
      for (let c = 0; c < numClasses; c++) if (!seen.has(c)) row[c] = each;
    }
    return row;
  }
  return undefined;
}
