import * as os from 'os';

/**
 * Ctrl-C for jobs that pay per query. Node's default on SIGINT/SIGTERM is to die at once, which loses
 * the answers of requests in flight (the server may have charged them; a rerun then replays them, but
 * only a server that honours Idempotency-Key does that for free). With this installed, the first signal
 * stops new requests and lets the ones in flight finish and be stored; a second one exits at once
 * (safe too: requests are written ahead, so the rerun resends exactly them). Either way the process
 * exits with the usual code for the signal (128 + its number: 130 for SIGINT, 143 for SIGTERM).
 *
 * Entry points that label (scripts, the pipeline's steal step) use it like this:
 *
 *   const stop = stopOnSignals();
 *   try {
 *     await labelImages(oracle, images, { ..., signal: stop.signal });
 *   } finally {
 *     stop.exitIfSignalled(); // after the answers that arrived are on disk
 *     stop.dispose();
 *   }
 *
 * or, for a whole job, `await withStopOnSignals((signal) => labelImages(..., { signal }))`.
 */

export interface SignalStop {
  /** Aborted at the first SIGINT/SIGTERM (its reason names the signal). */
  signal: AbortSignal;
  /** The signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  /** 128 + the signal's number once one was received (130 SIGINT, 143 SIGTERM). */
  readonly exitCode: number | undefined;
  /** Exits the process with exitCode if a signal was received; otherwise returns. */
  exitIfSignalled(): void;
  /** Removes the handlers (Node's defaults apply again). */
  dispose(): void;
}

export interface StopOnSignalsOptions {
  /** Default ['SIGINT', 'SIGTERM']. */
  signals?: NodeJS.Signals[];
  /** Where the "stopping" line goes; default stderr. false: silent. */
  log?: ((line: string) => void) | false;
  /** Called instead of process.exit (tests). */
  exit?: (code: number) => void;
}

export function exitCodeForSignal(sig: NodeJS.Signals): number {
  return 128 + (os.constants.signals[sig] ?? 0);
}

export function stopOnSignals(opts: StopOnSignalsOptions = {}): SignalStop {
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const log = opts.log === false ? undefined : opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals): void => {
    if (received) {
      log?.(`${sig} again: exiting now (requests in flight are recorded; a rerun resends them with the same keys)`);
      exit(exitCodeForSignal(sig));
      return;
    }
    received = sig;
    log?.(`${sig}: no new requests; waiting for those in flight and storing their answers (${sig === 'SIGINT' ? 'Ctrl-C' : sig} again to exit now)`);
    const reason = new Error(`stopped by ${sig}`);
    reason.name = 'AbortError';
    controller.abort(reason);
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    get exitCode() {
      return received ? exitCodeForSignal(received) : undefined;
    },
    exitIfSignalled() {
      if (received) exit(exitCodeForSignal(received));
    },
    dispose() {
      for (const s of signals) process.off(s, handler);
    },
  };
}

/**
 * Runs `job` with a signal that the first SIGINT/SIGTERM aborts; when one came, exits with its usual
 * code once the job has settled (its answers stored), whether the job resolved or rejected.
 */
export async function withStopOnSignals<T>(job: (signal: AbortSignal) => Promise<T>, opts: StopOnSignalsOptions = {}): Promise<T> {
  const stop = stopOnSignals(opts);
  try {
    return await job(stop.signal);
  } finally {
    stop.exitIfSignalled();
    stop.dispose();
  }
}
