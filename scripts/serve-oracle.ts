/**
 * npm run oracle:serve -- --model <dir> [options]
 *   (package.json: "oracle:serve": "ts-node --transpile-only scripts/serve-oracle.ts")
 *
 * Serves a saved oracle model like a cloud vision API (docs/oracle-api.md): API keys, per-key quota and
 * rate limit, answer mode and optional defences. Ctrl-C stops it and prints the per-key totals.
 */
import * as crypto from 'crypto';
import { parseArgs } from 'util';
import type { MonitorOptions } from '../src/defender/monitor';
import { formatBackendReport, initBackend } from '../src/platform/backend';
import { gaussianNoiseTransform, reverseSigmoidTransform, roundingTransform, type AnswerTransform } from '../src/oracle/answers';
import { loadModel } from '../src/io';
import { shortIdentity } from '../src/oracle/identity';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer, type ApiKeyPolicy } from '../src/oracle/server';
import { CIFAR10_CLASSES } from '../src/types';

const USAGE = `Usage: npm run oracle:serve -- --model <dir> [options]
  --model <dir>          model directory written by saveModel (model.json + weights.bin)   (required)
  --port <n>             default 8080 (0 = any free port)
  --host <addr>          default 127.0.0.1; 0.0.0.0 exposes the model to the network
  --key <[id:]secret>    API key, repeatable; default $COPYCAT_ORACLE_KEY, else a random key is printed
  --rate <n>             images per minute per key (token bucket); Azure free tier: 20
  --burst <n>            largest burst in images; default = --rate
  --quota <n>            total images per key (then 429 quota_exceeded)
  --mode <m>             label (default) | topk:<k> | probabilities | rounded:<decimals>
  --name <text>          name shown in /v1/health; default oracle-<first digits of the model's identity>
                         (never the model's path: /v1/health answers anyone)
  --price <usd>          US$ per 1000 images shown in /v1/health; default 1
  --max-images <n>       images per batch request; default 256
  --max-body <bytes>     request body limit; default 8388608
  --noise <sigma>        defence: Gaussian noise on the probabilities (seeded by --seed)
  --reverse-sigmoid <beta,gamma>   defence: reverse-sigmoid perturbation (Lee et al. 2019)
  --round <decimals>     defence: round the probabilities before shaping
  --seed <s>             seed for --noise; default 0
  --backend <name>       auto | tensorflow-gpu | tensorflow | wasm | cpu (like COPYCAT_BACKEND)
  --monitor <log|refuse> watch each key's queries for an extraction: log the alarm, or also refuse the key (403)
  --detect <list>        prada, confidence or both (comma-separated); default prada
  --prada-delta <w>      PRADA's Shapiro-Wilk threshold; default 0.9
  --confidence <t,rate[,window]>  alarm when more than rate of the last window (200) queries get a top probability
                         below t (calibrate rate on honest traffic: npm run experiment -- detect)
  --admin-key <secret>   may read GET /v1/stats (every key's counts and monitor state); repeatable
  --quiet                no per-request log lines`;

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new Error(`${flag}: expected a number, got '${v}'`);
  return x;
}

function monitorOf(action: string, detect: string, delta: string | undefined, confidence: string | undefined): MonitorOptions {
  if (action !== 'log' && action !== 'refuse') throw new Error(`--monitor: expected log or refuse, got '${action}'`);
  const which = detect.split(',').map((x) => x.trim());
  if (!which.length || which.some((w) => w !== 'prada' && w !== 'confidence')) throw new Error(`--detect: expected prada, confidence or both, got '${detect}'`);
  let conf: MonitorOptions['confidence'] = null;
  if (which.includes('confidence')) {
    if (!confidence) throw new Error('--detect confidence needs --confidence <threshold,maxRate[,window]> (e.g. 0.5,0.2)');
    const [threshold, maxRate, window] = confidence.split(',').map((x) => num(x, '--confidence'));
    conf = { threshold, maxRate, ...(window !== undefined ? { window } : {}) };
  }
  return { action, prada: which.includes('prada') ? (delta !== undefined ? { delta: num(delta, '--prada-delta') } : {}) : null, confidence: conf };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      key: { type: 'string', multiple: true },
      rate: { type: 'string' },
      burst: { type: 'string' },
      quota: { type: 'string' },
      mode: { type: 'string', default: 'label' },
      name: { type: 'string' },
      price: { type: 'string' },
      'max-images': { type: 'string' },
      'max-body': { type: 'string' },
      noise: { type: 'string' },
      'reverse-sigmoid': { type: 'string' },
      round: { type: 'string' },
      seed: { type: 'string', default: '0' },
      backend: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      monitor: { type: 'string' },
      'prada-delta': { type: 'string' },
      detect: { type: 'string' },
      confidence: { type: 'string' },
      'admin-key': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return void console.log(USAGE);
  if (!values.model) throw new Error(`--model <dir> is required\n${USAGE}`);

  const report = await initBackend({ prefer: values.backend as never, allowPureJs: true, quiet: true });
  console.log(formatBackendReport(report));

  const transforms: AnswerTransform[] = [];
  if (values.noise !== undefined) transforms.push(gaussianNoiseTransform(num(values.noise, '--noise')!, values.seed));
  if (values['reverse-sigmoid'] !== undefined) {
    const [beta, gamma] = values['reverse-sigmoid'].split(',').map((s) => num(s, '--reverse-sigmoid'));
    if (beta === undefined || gamma === undefined) throw new Error(`--reverse-sigmoid: expected beta,gamma, got '${values['reverse-sigmoid']}'`);
    transforms.push(reverseSigmoidTransform(beta, gamma));
  }
  if (values.round !== undefined) transforms.push(roundingTransform(num(values.round, '--round')!));

  let secrets = values.key ?? (process.env.COPYCAT_ORACLE_KEY ? [process.env.COPYCAT_ORACLE_KEY] : []);
  if (secrets.length === 0) {
    secrets = [`sk-${crypto.randomBytes(12).toString('hex')}`];
    console.log(`no --key given: generated API key ${secrets[0]}`);
  }
  const rate = num(values.rate, '--rate');
  const keys: ApiKeyPolicy[] = secrets.map((s, i) => {
    const m = /^([A-Za-z0-9_.-]+):(.+)$/.exec(s);
    return {
      id: m ? m[1] : `key-${i + 1}`,
      key: m ? m[2] : s,
      quota: num(values.quota, '--quota'),
      ratePerMinute: rate,
      burst: num(values.burst, '--burst'),
    };
  });

  const model = await loadModel(values.model);
  const numClasses = model.outputs[0]?.shape[1];
  const served = new LocalOracle(model, {
    name: values.name,
    answer: values.mode,
    transforms,
    pricePer1000: num(values.price, '--price'),
    // A 10-way model in this kit is a CIFAR-10 oracle; naming the classes makes answers readable.
    classNames: numClasses === 10 ? [...CIFAR10_CLASSES] : undefined,
  });
  const srv = await startOracleServer({
    oracle: served,
    keys,
    host: values.host,
    port: num(values.port, '--port'),
    maxImagesPerRequest: num(values['max-images'], '--max-images'),
    maxBodyBytes: num(values['max-body'], '--max-body'),
    log: values.quiet ? false : undefined,
    name: values.name ?? `oracle-${shortIdentity(served.info.identity!)}`,
    ...(values.monitor !== undefined ? { monitor: monitorOf(values.monitor, values.detect ?? 'prada', values['prada-delta'], values.confidence) } : {}),
    adminKeys: values['admin-key'],
  });
  const limits = [rate ? `${rate} images/min` : 'no rate limit', keys[0].quota !== undefined ? `quota ${keys[0].quota}` : 'no quota'].join(', ');
  console.log(`oracle ${values.model} = ${served.info.identity} (${served.info.numClasses} classes, ${served.info.input.height}x${served.info.input.width}, mode ${values.mode}${transforms.length ? `, defences ${transforms.map((t) => t.name).join(' ')}` : ''})`);
  console.log(`listening on ${srv.url}  keys: ${keys.map((k) => k.id).join(', ')}  (${limits} per key)`);
  console.log(`try: curl -s ${srv.url}/v1/health`);
  const stop = async (): Promise<void> => {
    await srv.close();
    console.log(JSON.stringify(srv.stats()));
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((e) => {
  console.error(`serve-oracle: ${(e as Error).message}`);
  process.exit(1);
});
