import type { ImageSet } from '../types';

/**
 * What every oracle speaks, local or remote. The attack code only ever sees this interface, so the same
 * labeling job runs against a model in memory, our HTTP server, or any server that speaks
 * docs/oracle-api.md.
 */

/** How much of its belief the black box reveals. 'label' is the paper's setting (and Azure's). */
export type AnswerMode = 'label' | 'topk' | 'probabilities' | 'rounded';

export interface AnswerSpec {
  mode: AnswerMode;
  /** topk: how many (label, p) pairs; default 3. */
  k?: number;
  /** rounded: decimals kept in each probability; default 2. */
  decimals?: number;
}

export interface TopkEntry {
  label: number;
  p: number;
}

/** One answer per queried image. `label` is always there; the rest depends on the mode. */
export interface OracleAnswer {
  label: number;
  /** Mode 'topk': the k most likely classes, most likely first. */
  topk?: TopkEntry[];
  /** Modes 'probabilities' and 'rounded': one value per class. */
  probs?: number[];
}

export interface OracleInfo {
  /** Free text naming the model / endpoint, stored with the stolen labels. */
  name: string;
  kind: 'local' | 'http' | string;
  answer: AnswerSpec;
  numClasses: number;
  classNames?: string[];
  /** Image size the oracle's model consumes; HTTP servers resize whatever they get to it. */
  input: { height: number; width: number };
  /** US$ per 1000 images queried. */
  pricePer1000: number;
  /** Client-side budget in images (undefined = unlimited). */
  budget?: number;
  /** Names of the answer transforms (defences) applied before shaping, in order. */
  transforms?: string[];
}

export interface OracleStats {
  /** Images whose answers arrived (what is paid for). */
  queries: number;
  /** Calls of query() / HTTP requests that returned answers. */
  requests: number;
  /** HTTP only: attempts that failed and were retried or given up (not paid). */
  failedAttempts: number;
  /** HTTP only: 429 answers honoured (waited for). */
  throttled: number;
  /** queries * pricePer1000 / 1000, in US$. */
  cost: number;
  budget?: number;
  /** budget - queries, when there is a budget. */
  remaining?: number;
}

export interface Oracle {
  /** One answer per image of `batch`, in order. Throws QueryBudgetExceeded before asking beyond the budget. */
  query(batch: ImageSet): Promise<OracleAnswer[]>;
  stats(): OracleStats;
  readonly info: OracleInfo;
}
