/**
 * A stop time for long trainings. Copycat members and distilled students train for hours on a CPU, often
 * on machines lent for a fixed time (a cloud spot instance, a shared box, a work session). Killed at that
 * time, a run loses the epoch it was in. With a deadline it ends on the last checkpoint instead: after each
 * epoch, if the next one would not end before the deadline, the signal aborts and train() stops before the
 * next batch. The same command resumes from that checkpoint later.
 */

import { formatDuration } from '../display/progress';

export interface EpochDeadline {
  /** Give to train(): it is aborted when the next epoch would end after the deadline. */
  signal: AbortSignal;
  /** Call after every epoch (train()'s onEpoch): times the epoch and decides whether another one fits. */
  onEpoch: () => void;
  /** Why the signal was aborted, for the user; undefined while it has not been. */
  reason: () => string | undefined;
}

/**
 * The next epoch is assumed to take as long as the longest epoch timed so far by this deadline, wall time
 * between onEpoch calls: training, validation, the checkpoint and anything else the caller does between
 * epochs. The first epoch is timed from the deadline's creation, so setup counts against it too (an
 * overestimate, which only stops a run earlier). No epoch is stopped before one has been timed.
 */
export function epochDeadline(deadline: Date, now: () => number = Date.now): EpochDeadline {
  const ac = new AbortController();
  let last = now();
  let longest = 0;
  let why: string | undefined;
  return {
    signal: ac.signal,
    onEpoch: () => {
      const t = now();
      longest = Math.max(longest, t - last);
      last = t;
      if (!ac.signal.aborted && t + longest > deadline.getTime()) {
        why = `the next epoch (about ${formatDuration(longest / 1000)}, the longest so far) would end after ${deadline.toISOString()}`;
        ac.abort();
      }
    },
    reason: () => why,
  };
}

/**
 * Reads a --stop-before value: a date-time with its time zone (ISO 8601, e.g. 2026-12-06T01:55Z) or a time
 * from now (90m, 2h, 1h30m). A date-time without a zone would depend on the machine's TZ, so it is refused.
 */
export function parseDeadline(text: string, now: number = Date.now()): Date {
  const s = text.trim();
  const duration = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?$/i.exec(s);
  if (duration && (duration[1] || duration[2])) {
    const minutes = 60 * Number(duration[1] ?? 0) + Number(duration[2] ?? 0);
    if (minutes > 0) return new Date(now + minutes * 60000);
  }
  const iso = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i.test(s);
  const t = iso ? Date.parse(s.replace(' ', 'T')) : NaN;
  if (!Number.isFinite(t)) {
    throw new Error(`--stop-before: expected a date-time with its time zone (e.g. 2026-12-06T01:55Z or 2026-12-06T02:55+01:00) or a time from now (e.g. 90m, 2h, 1h30m), got '${text}'`);
  }
  if (t <= now) throw new Error(`--stop-before: ${new Date(t).toISOString()} has already passed (now ${new Date(now).toISOString()})`);
  return new Date(t);
}
