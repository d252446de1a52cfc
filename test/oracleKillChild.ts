/**
 * The labeling process that test/oracleKill.test.ts kills: labels the kill-test image set against the
 * server at argv[2] with the cache argv[3], as a user's job would (HttpOracle + labelImages, Ctrl-C
 * handled by withStopOnSignals), and prints trace lines on stderr so the test can kill it at chosen
 * moments:
 *   TRACE sent     the requests of a query are written ahead and about to go out
 *   TRACE write    a response arrived; its answers are about to be appended (slowly, under the test hook)
 *   TRACE written  they are on disk
 *   DONE {...}     finished; the stolen-label summary
 *
 *   node -r ts-node/register/transpile-only test/oracleKillChild.ts <url> <cacheFile> <n> [budget|-] [timeoutMs]
 */
import * as fs from 'fs';
import { HttpOracle } from '../src/oracle/client';
import { withStopOnSignals } from '../src/oracle/stopSignals';
import type { Oracle, QueryOptions } from '../src/oracle/types';
import { labelImages } from '../src/stolenLabels';
import type { ImageSet } from '../src/types';
import { killSet } from './oracleKillSet';

const trace = (what: string): void => {
  // Synchronous, so the line is out before whatever follows it can be interrupted.
  fs.writeSync(2, `TRACE ${what}\n`);
};

/** The oracle with trace lines around the hooks labelImages passes. */
function traced(inner: Oracle): Oracle {
  return {
    get info() {
      return inner.info;
    },
    stats: () => inner.stats(),
    query: (batch: ImageSet, q: QueryOptions = {}) =>
      inner.query(batch, {
        ...q,
        onRequests: (r) => {
          q.onRequests?.(r);
          trace('sent');
        },
        onAnswers: (start, answers) => {
          trace('write');
          q.onAnswers?.(start, answers);
          trace('written');
        },
      }),
  };
}

async function main(): Promise<void> {
  const [url, cacheFile, n, budget, timeoutMs] = process.argv.slice(2);
  const oracle = await HttpOracle.connect({
    url,
    apiKey: 'sk-kill',
    concurrency: 3,
    imagesPerRequest: 8,
    timeoutMs: timeoutMs ? Number(timeoutMs) : 30_000,
    backoffMs: 5,
    maxBackoffMs: 50,
    maxRetries: 100,
  });
  const set = await withStopOnSignals(
    (signal) =>
      labelImages(traced(oracle), killSet(Number(n)), {
        cacheFile,
        batchSize: 24,
        progress: false,
        signal,
        ...(budget && budget !== '-' ? { budget: Number(budget) } : {}),
      }),
    { log: false },
  );
  process.stdout.write(`DONE ${JSON.stringify({ n: set.n, queries: set.queries })}\n`);
}

main().catch((e) => {
  process.stderr.write(`ERROR ${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(3);
});
