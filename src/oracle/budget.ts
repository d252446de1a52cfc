import type { OracleStats } from './types';

/** Azure Cognitive Services' paid tier charged about US$1 per 1000 images; the seed's real-world case. */
export const DEFAULT_PRICE_PER_1000 = 1;

/**
 * Raised before a query that would go beyond the budget, so nothing past it is ever paid for. Also used
 * when a server reports that the API key's quota is spent.
 */
export class QueryBudgetExceeded extends Error {
  readonly used: number;
  readonly limit: number;
  readonly requested: number;
  constructor(used: number, limit: number, requested: number, what = 'query budget') {
    super(`QueryBudgetExceeded: ${what} exhausted: used ${used} of ${limit} images, this request needs ${requested} more`);
    this.name = 'QueryBudgetExceeded';
    this.used = used;
    this.limit = limit;
    this.requested = requested;
  }
}

export interface MeterOptions {
  /** Images allowed in total (undefined = unlimited). */
  budget?: number;
  /** US$ per 1000 images; default DEFAULT_PRICE_PER_1000. */
  pricePer1000?: number;
}

/**
 * Counts images answered, checks the budget and prices them: one place for every oracle so local and
 * HTTP oracles report cost identically.
 */
export class QueryMeter {
  readonly budget?: number;
  readonly pricePer1000: number;
  private queries = 0;
  private reserved = 0;
  private requests = 0;
  failedAttempts = 0;
  throttled = 0;

  constructor(opts: MeterOptions = {}) {
    if (opts.budget !== undefined && !(Number.isInteger(opts.budget) && opts.budget >= 0)) {
      throw new Error(`budget must be a non-negative integer number of images, got ${opts.budget}`);
    }
    const price = opts.pricePer1000 ?? DEFAULT_PRICE_PER_1000;
    if (!(Number.isFinite(price) && price >= 0)) throw new Error(`pricePer1000 must be a number >= 0, got ${price}`);
    this.budget = opts.budget;
    this.pricePer1000 = price;
  }

  /**
   * Claims `n` images of budget before asking (throws QueryBudgetExceeded if they do not fit). Claims
   * include requests in flight so concurrent requests cannot overshoot together.
   */
  reserve(n: number): void {
    if (this.budget !== undefined && this.queries + this.reserved + n > this.budget) {
      throw new QueryBudgetExceeded(this.queries + this.reserved, this.budget, n);
    }
    this.reserved += n;
  }

  /** `answered` of the reserved `reservedCount` images came back (and are paid); the rest is released. */
  settle(reservedCount: number, answered: number): void {
    this.reserved -= reservedCount;
    this.queries += answered;
    if (answered > 0) this.requests += 1;
  }

  stats(): OracleStats {
    const s: OracleStats = {
      queries: this.queries,
      requests: this.requests,
      failedAttempts: this.failedAttempts,
      throttled: this.throttled,
      cost: costOf(this.queries, this.pricePer1000),
    };
    if (this.budget !== undefined) {
      s.budget = this.budget;
      s.remaining = this.budget - this.queries;
    }
    return s;
  }
}

/** US$ for `queries` images, rounded to a hundredth of a cent so sums print cleanly. */
export function costOf(queries: number, pricePer1000: number): number {
  return Math.round(queries * pricePer1000 * 10) / 10000;
}
