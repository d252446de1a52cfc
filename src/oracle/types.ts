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
  /**
   * Who answers, as a digest that does not depend on how the oracle was reached: for a model (local or
   * served by the kit) a digest of its weights and answer settings, for another server its URL and
   * answer settings. The query cache is keyed by it, so a path spelled differently or a server
   * restarted on another port still finds the answers already paid for. Oracles without one are
   * matched by `name` (the behaviour before identities existed).
   */
  identity?: string;
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
  /**
   * HTTP only: images the server says this API key may still be charged (its quota minus what it
   * charged), from the latest response; absent while unknown or when the key has no quota.
   */
  quotaRemaining?: number;
}

/** One request a remote oracle is about to send: images start..start+count-1 of the batch, and its key. */
export interface PlannedRequest {
  start: number;
  count: number;
  /** The Idempotency-Key it carries: derived from its images, so the same request always has the same key. */
  key: string;
}

/**
 * What a caller that keeps paid answers (labelImages) needs from query() to never pay twice. All
 * optional: an oracle that ignores them still works, its answers are then stored when query() returns.
 */
export interface QueryOptions {
  /**
   * Called synchronously before the requests go out (and again for sub-requests after a split).
   * Recording them first lets a later run resend exactly these requests, keys included, which a server
   * that honours Idempotency-Key replays without charging.
   */
  onRequests?: (requests: PlannedRequest[]) => void;
  /**
   * Called synchronously with each request's answers as soon as they arrived and were validated, before
   * they are used or query() resolves: answers[k] is the answer to image start + k of the batch.
   */
  onAnswers?: (start: number, answers: OracleAnswer[]) => void;
  /**
   * The owner's side only (a LocalOracle serving its own model): the model's class probabilities for the
   * batch (n x numClasses, row-major) before they are shaped into answers, e.g. for the server's
   * confidence monitor. Remote oracles never call it.
   */
  onProbabilities?: (probs: Float32Array) => void;
  /**
   * Once aborted no new request starts; requests in flight finish (they may have been charged) and
   * their answers still reach onAnswers; then query() rejects with an AbortError carrying
   * partialAnswers.
   */
  stop?: AbortSignal;
  /** Largest request for this call (images); lets a recorded request be resent as one request. */
  maxImagesPerRequest?: number;
}
export interface Oracle {
  /** One answer per image of `batch`, in order. Throws QueryBudgetExceeded before asking beyond the budget. */
  query(batch: ImageSet, opts?: QueryOptions): Promise<OracleAnswer[]>;
  stats(): OracleStats;
  readonly info: OracleInfo;
}
