/**
 * npm run steal -- --source <spec> --oracle <spec> --out <stolen.json> [options]
 *   (package.json: "steal": "ts-node --transpile-only scripts/steal.ts")
 *
 * Labels NPD images against any black box (a local model folder, a server speaking docs/oracle-api.md,
 * or an outside JSON API described by an adapter file) and writes the stolen-label set the copycat is
 * trained on. Progress and logs go to stderr/stdout as usual; the LAST stdout line is a JSON summary.
 * docs/steal.md.
 */
import { parseArgs } from 'util';
import { stopOnSignals } from '../src/oracle/stopSignals';
import { steal } from '../src/steal';

const USAGE = `Usage: npm run steal -- --source <spec> --oracle <spec> --out <stolen.json> [options]
  --source <spec>       NPD images: a folder, a .zip, folder:<path>, zip:<path>, tiny-imagenet,
                        tiny-imagenet-rest20k (the mirror's extra 20k), coco-val2017, coco-train2014
  --oracle <spec>       local:<modelDir> | http:<url> (docs/oracle-api.md) | adapter:<file.json> (docs/steal.md)
  --out <file.json>     the stolen-label set; caches go next to it (<name>.answers-<id>.jsonl, ...)
  --images <n>          a seeded random subset of n images (default: all)
  --seed <s>            seed of that subset (default 0)
  --size <px>           image size labeled and stored (default 32, the copycat's input)
  --budget <n|none>     at most n images paid for this output, over all runs (kept with the cache;
                        'none' lifts it); when spent, the set holds the images labeled so far
  --concurrency <c>     requests in flight (http default 4, adapter: the file's, else 2)
  --rate <per_min>      client-side images/minute (stay under a known rate limit)
  --price <per_1000>    US$ per 1000 images (default: the server's / the file's, else 1)
  --answer <mode>       label (default) | topk:<k> | probabilities (| rounded:<d> for local/http)
  --key-env <NAME>      environment variable holding the API key (http: default COPYCAT_ORACLE_KEY;
                        adapter: overrides auth.env). Keys are never taken on the command line.
  --timeout-ms <ms>     per-request timeout (default 30000)
  --name <set>          set name recorded in the file (default NPD-SL)
  --batch <n>           images per labeling batch / cache flush (default 256)
Ctrl-C / SIGTERM: no new requests, answers in flight are stored, exit 130 / 143; run the same
command again to resume (nothing is paid twice). A second Ctrl-C quits at once.`;

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isInteger(x)) throw new Error(`${flag}: expected a whole number, got '${v}'`);
  return x;
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new Error(`${flag}: expected a number >= 0, got '${v}'`);
  return x;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      source: { type: 'string' },
      oracle: { type: 'string' },
      out: { type: 'string' },
      images: { type: 'string' },
      seed: { type: 'string' },
      size: { type: 'string' },
      budget: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      price: { type: 'string' },
      answer: { type: 'string' },
      'key-env': { type: 'string' },
      'timeout-ms': { type: 'string' },
      name: { type: 'string' },
      batch: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  for (const f of ['source', 'oracle', 'out'] as const) if (!values[f]) throw new Error(`--${f} is required\n${USAGE}`);

  const rate = num(values.rate, '--rate');
  if (rate === 0) throw new Error('--rate: expected a number > 0 images per minute');
  const budget = values.budget === 'none' ? null : int(values.budget, '--budget');
  // First Ctrl-C / SIGTERM: no new requests, those in flight finish and are stored; second: exit now.
  const stop = stopOnSignals({ log: (l) => console.error(`steal: ${l}`) });
  try {
    const { summary } = await steal({
      source: values.source!,
      oracle: values.oracle!,
      out: values.out!,
      images: int(values.images, '--images'),
      seed: int(values.seed, '--seed'),
      size: int(values.size, '--size'),
      budget,
      concurrency: int(values.concurrency, '--concurrency'),
      ratePerMinute: rate,
      pricePer1000: num(values.price, '--price'),
      answer: values.answer,
      keyEnv: values['key-env'],
      timeoutMs: int(values['timeout-ms'], '--timeout-ms'),
      name: values.name,
      batchSize: int(values.batch, '--batch'),
      signal: stop.signal,
    });
    console.error(
      `steal: ${summary.kept} images in ${summary.out}` +
        (summary.unmapped ? `, ${summary.unmapped} left out as unmapped (${Object.entries(summary.unmappedNames).map(([k, v]) => `${k} ${v}`).join(', ')})` : '') +
        `; paid ${summary.queries} images now ($${summary.cost.toFixed(2)}), the set cost $${summary.totalCost.toFixed(2)} in all` +
        (summary.complete ? '' : `; budget spent, ${summary.unlabeled} images unlabeled`),
    );
    console.log(JSON.stringify(summary));
    return 0;
  } catch (e) {
    if (stop.received) {
      console.error(`steal: stopped (${(e as Error).message}); answers so far are cached next to ${values.out}: run the same command again to resume`);
      stop.exitIfSignalled();
    }
    throw e;
  } finally {
    stop.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`steal: ${(e as Error).message}`);
    process.exit(1);
  },
);
