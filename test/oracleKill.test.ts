import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { HttpOracle } from '../src/oracle/client';
import { QueryCache } from '../src/oracle/cache';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer, type OracleServer } from '../src/oracle/server';
import { labelImages, loadStolenLabels } from '../src/stolenLabels';
import { compileChild } from './childScript';
import { CountingOracle, tinyModel, tmpDir } from './oracleFixtures';
import { killSet, killSetDistinct } from './oracleKillSet';

/**
 * "Never pay twice" (issue 51; docs/oracle-api.md §2, "Never pay twice"): a labeling process killed at any moment and run
 * again pays for every image exactly once. The labeling runs in a child process (test/oracleKillChild.ts)
 * against the kit's server in this process, whose model counts every image it answers: that count is
 * the bill. COPYCAT_TEST_CACHE_WRITE_PAUSE_MS widens every cache write so kills land inside them.
 */

const CHILD = path.join(__dirname, 'oracleKillChild.ts');
let child: { file: string; env: NodeJS.ProcessEnv } | undefined;

interface KillAt {
  /** Trace event to wait for: 'sent' (requests written ahead, going out) or 'write' (answers being appended). */
  event: 'sent' | 'write';
  /** Kill at its nth occurrence ... */
  nth: number;
  /** ... this many ms later. */
  delayMs: number;
  signal: NodeJS.Signals;
}

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Trace events in order. */
  events: string[];
  /** The last trace event before the kill was sent. */
  atKill?: string;
  stdout: string;
  stderr: string;
}

function runChild(url: string, cacheFile: string, n: number, opts: { killAt?: KillAt; budget?: number; timeoutMs?: number } = {}): Promise<ChildRun> {
  child ??= compileChild(CHILD);
  const args = [child.file, url, cacheFile, String(n), opts.budget !== undefined ? String(opts.budget) : '-', String(opts.timeoutMs ?? 30_000)];
  const proc = spawn(process.execPath, args, { env: { ...child.env, COPYCAT_TEST_CACHE_WRITE_PAUSE_MS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const run: ChildRun = { code: null, signal: null, events: [], stdout: '', stderr: '' };
  let seen = 0;
  let pending = '';
  proc.stdout.on('data', (d) => (run.stdout += d));
  proc.stderr.on('data', (d: Buffer) => {
    run.stderr += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) {
      const m = /^TRACE (\w+)/.exec(l);
      if (!m) continue;
      run.events.push(m[1]);
      const k = opts.killAt;
      if (k && m[1] === k.event && ++seen === k.nth) {
        setTimeout(() => {
          run.atKill = run.events[run.events.length - 1];
          proc.kill(k.signal);
        }, k.delayMs);
      }
    }
  });
  return new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      run.code = code;
      run.signal = signal;
      resolve(run);
    }),
  );
}

/** Answer records in a cache file (the header and budget/identity records are not answers). */
function cachedAnswers(file: string): number {
  if (!fs.existsSync(file)) return 0;
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"h":') && l.endsWith('}')).length;
}

describe('never pay twice: a labeling process killed at any moment, then rerun', function () {
  this.timeout(180_000);
  const model = tinyModel();
  const servers: OracleServer[] = [];
  /** The kit's server in front of a model that counts (the bill) and takes `delay` ms per request. */
  async function countingServer(delay: (call: number) => number, quota?: number): Promise<{ srv: OracleServer; bill: CountingOracle }> {
    const bill = new CountingOracle(new LocalOracle(model), delay);
    const srv = await startOracleServer({ oracle: bill, keys: [{ key: 'sk-kill', id: 'attacker', quota }], log: false, maxImagesPerRequest: 8 });
    servers.push(srv);
    return { srv, bill };
  }
  let truth: number[];
  const N = 400;

  before(async () => {
    await tf.setBackend('cpu');
    truth = (await new LocalOracle(model).query(killSet(N))).map((a) => a.label);
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('SIGKILL at 20 seeded random moments (mid-request, mid-write): total charges == distinct images', async () => {
    const rng = seedrandom('kill-moments');
    const latency = seedrandom('kill-latency'); // its own stream: the kill moments must not depend on timing
    const { srv, bill } = await countingServer(() => 10 + Math.floor(latency() * 30));
    const cacheFile = path.join(tmpDir('kill'), 'answers.jsonl');
    const runs: ChildRun[] = [];
    let midRequest = 0;
    for (let i = 0; i < 20; i++) {
      const event = rng() < 0.5 ? 'sent' : 'write';
      const killAt: KillAt = { event, nth: 1 + Math.floor(rng() * 3), delayMs: event === 'sent' ? Math.floor(rng() * 25) : Math.floor(rng() * 6), signal: 'SIGKILL' };
      const answeredBefore = srv.stats().byStatus['200'] ?? 0;
      const r = await runChild(srv.url, cacheFile, N, { killAt });
      assert.equal(r.signal, 'SIGKILL', `run ${i} was not killed (exit ${r.code}): ${r.stderr.slice(-500)}`);
      runs.push(r);
      await new Promise((res) => setTimeout(res, 60)); // requests the child left behind finish on the server
      // The server answered more requests than the child stored: it was killed with answers on the way.
      if ((srv.stats().byStatus['200'] ?? 0) - answeredBefore > r.events.filter((e) => e === 'written').length) midRequest++;
    }
    const last = await runChild(srv.url, cacheFile, N);
    assert.equal(last.code, 0, last.stderr.slice(-1000));

    const distinct = killSetDistinct(N);
    assert.equal(bill.repeats, 0, `${bill.repeats} images were charged more than once`);
    assert.equal(bill.seen.size, distinct);
    assert.equal(srv.stats().images, distinct, 'total charges == distinct images');
    assert.deepEqual(loadStolenLabels(path.join(path.dirname(cacheFile), 'stolen.json')).labels, truth);
    assert.ok(!fs.existsSync(QueryCache.requestsFileOf(cacheFile)), 'nothing left pending');
    // The moments were varied: inside cache writes, and with answers on the way (charged, never stored).
    const midWrite = runs.filter((r) => r.atKill === 'write').length;
    assert.ok(midWrite >= 4, `only ${midWrite} kills landed inside a cache write`);
    assert.ok(midRequest >= 4, `only ${midRequest} kills left charged answers in flight`);
    assert.ok(srv.stats().replayed >= 1, 'a rerun had the server replay a request it had charged');
  });

  it('client timeouts shorter than the server\'s latency: retries reuse the key, total charges == distinct images', async () => {
    const rng = seedrandom('slow-answers');
    const { srv, bill } = await countingServer(() => (rng() < 0.3 ? 250 : 5));
    const oracle = await HttpOracle.connect({ url: srv.url, apiKey: 'sk-kill', concurrency: 3, imagesPerRequest: 8, timeoutMs: 100, backoffMs: 5, maxBackoffMs: 40, maxRetries: 100 });
    const set = killSet(N);
    await bill.query({ ...set, n: 1, images: set.images.subarray(0, 192) }); // the server's model folds its copy once
    bill.seen.clear();
    bill.images = 0;
    const tensors = tf.memory().numTensors;
    const stolen = await labelImages(oracle, set, { cacheFile: path.join(tmpDir('timeouts'), 'answers.jsonl'), batchSize: 24, progress: false });
    assert.equal(tf.memory().numTensors, tensors, 'no tensors left behind by the served model');
    assert.deepEqual(stolen.labels, truth);
    assert.ok(oracle.stats().failedAttempts >= 5, `only ${oracle.stats().failedAttempts} timeouts: the test did not test`);
    assert.equal(bill.repeats, 0, `${bill.repeats} images were charged more than once`);
    assert.equal(srv.stats().images, killSetDistinct(N), 'total charges == distinct images');
    assert.ok(srv.stats().replayed >= 1);
  });

  it('timeouts and SIGKILLs together, then a budget that holds across reruns: charges == the budget', async () => {
    const rng = seedrandom('slow-and-killed');
    const { srv, bill } = await countingServer(() => (rng() < 0.3 ? 150 : 5));
    const cacheFile = path.join(tmpDir('budget'), 'answers.jsonl');
    const budget = 120;
    for (let i = 0; i < 4; i++) {
      const r = await runChild(srv.url, cacheFile, N, { budget, timeoutMs: 60, killAt: { event: 'write', nth: 1 + (i % 2), delayMs: 0, signal: 'SIGKILL' } });
      assert.equal(r.signal, 'SIGKILL', r.stderr.slice(-500));
    }
    // Rerun without saying the budget again: the cache remembers it.
    const r = await runChild(srv.url, cacheFile, N, { timeoutMs: 60 });
    assert.equal(r.code, 3, r.stderr.slice(-500));
    assert.match(r.stderr, /ERROR QueryBudgetExceeded: .*query budget recorded with the cache/);
    assert.equal(bill.repeats, 0);
    assert.equal(srv.stats().images, budget, 'the budget was spent once, to the last image');
    assert.equal(cachedAnswers(cacheFile), budget, 'and every image paid is in the cache');
  });

  it('SIGINT / SIGTERM: no new requests, those in flight are stored, exit 130 / 143; the rerun finishes', async () => {
    const { srv, bill } = await countingServer(() => 40);
    const cacheFile = path.join(tmpDir('signals'), 'answers.jsonl');
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const r = await runChild(srv.url, cacheFile, N, { killAt: { event: 'sent', nth: 2, delayMs: 5, signal } });
      assert.equal(r.code, code, `${signal}: exit ${r.code} ${r.signal}: ${r.stderr.slice(-500)}`);
      assert.equal(srv.stats().images, cachedAnswers(cacheFile), `${signal}: everything charged is in the cache`);
    }
    const last = await runChild(srv.url, cacheFile, N);
    assert.equal(last.code, 0, last.stderr.slice(-500));
    assert.equal(bill.repeats, 0);
    assert.equal(srv.stats().images, killSetDistinct(N));
  });
});
