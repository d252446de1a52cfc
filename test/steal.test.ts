import { strict as assert } from 'assert';
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import sharp from 'sharp';
import { AdapterFileError, AdapterOracle, loadAdapterFile, parseAdapter, parsePath, UNMAPPED } from '../src/oracle/adapter';
import { partialAnswersOf } from '../src/oracle/client';
import { loadStolenSetWithImages, parseOracleSpec, parseSourceSpec, type OutsideStolenSet, type StealSummary } from '../src/steal';
import { loadStolenLabels } from '../src/stolenLabels';
import { CIFAR10_CLASSES, type ImageSet } from '../src/types';
import { tmpDir } from './oracleFixtures';
import { npdFolder, tinyOverrides } from './stepFixtures';
import { initBackend } from '../src/platform/backend';
import { openRun } from '../src/run';
import { trainCopycat } from '../src/steps/copycatStep';
import { trainOracle } from '../src/steps/oracleStep';
import { stealLabels } from '../src/steps/stealStep';

/**
 * `npm run steal` against a third-party API whose protocol is not the kit's: it wants 64x64 JPEGs as
 * base64 in {"instances": [{"b64": ...}]}, a bearer key, and answers {"outputs": [{"top", "scores"}]}
 * with class names of its own, some of which the adapter's map leaves out. The API runs in this process
 * on 127.0.0.1; the steal command runs as a child process, as a user would run it.
 */

const ROOT = path.resolve(__dirname, '..');
const EXAMPLE = path.join(ROOT, 'docs/adapters/example-json-api.json');

/** The fake API's classes, one solid colour each: it answers the class whose colour is nearest the image's mean. */
const PALETTE: { name: string; rgb: [number, number, number] }[] = [
  { name: 'airliner', rgb: [225, 30, 30] },
  { name: 'sports car', rgb: [30, 225, 30] },
  { name: 'bird', rgb: [30, 30, 225] },
  { name: 'Tabby Cat', rgb: [225, 225, 30] }, // case differs from the map's "tabby cat" on purpose
  { name: 'cat', rgb: [225, 30, 225] },
  { name: 'dog', rgb: [30, 225, 225] },
  { name: 'frog', rgb: [128, 128, 128] },
  { name: 'horse', rgb: [225, 225, 225] },
  { name: 'container ship', rgb: [30, 30, 30] },
  { name: 'fire truck', rgb: [225, 128, 30] },
  { name: 'toaster', rgb: [30, 128, 225] }, // not in the map
  { name: 'zebra', rgb: [128, 30, 225] }, // not in the map
];
const MAP_TO_CIFAR: Record<string, string | undefined> = {
  airliner: 'airplane', 'sports car': 'automobile', bird: 'bird', 'Tabby Cat': 'cat', cat: 'cat', dog: 'dog', frog: 'frog',
  horse: 'horse', 'container ship': 'ship', 'fire truck': 'truck',
};

interface FakeApiOptions {
  key: string;
  /** Request numbers (1-based, counting every POST) answered 429 with Retry-After: 1. */
  throttle?: number[];
  /** Request numbers whose images are charged and then answered 503 (an answer lost on the way). */
  loseAnswer?: number[];
  /** Every request answered 400 with the Authorization header echoed in the body. */
  echoKey?: boolean;
  /** Charged requests are answered this much later (so a stop can land while requests are in flight). */
  delayMs?: number;
  /** Called after each charged request. */
  onCharged?: () => void;
}

interface FakeApi {
  url: string;
  requests: number;
  charged: number;
  throttled: number;
  replayed: number;
  /** Image counts of the charged requests. */
  batches: number[];
  close(): Promise<void>;
}

function nearest(rgb: number[]): number {
  let best = 0;
  let bestD = Infinity;
  PALETTE.forEach((p, i) => {
    const d = (p.rgb[0] - rgb[0]) ** 2 + (p.rgb[1] - rgb[1]) ** 2 + (p.rgb[2] - rgb[2]) ** 2;
    if (d < bestD) [best, bestD] = [i, d];
  });
  return best;
}

/** Scores over all API classes: 0.55 on the top one, the rest spread unevenly (so the sums can be checked). */
function scoresFor(top: number): Record<string, number> {
  const s: Record<string, number> = {};
  let rest = 0;
  PALETTE.forEach((p, i) => {
    if (i !== top) rest += i + 1;
  });
  PALETTE.forEach((p, i) => (s[p.name] = i === top ? 0.55 : (0.45 * (i + 1)) / rest));
  return s;
}

async function startFakeApi(o: FakeApiOptions): Promise<FakeApi> {
  const replies = new Map<string, string>();
  const state = { requests: 0, charged: 0, throttled: 0, replayed: 0, batches: [] as number[] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
          res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
          res.end(typeof body === 'string' ? body : JSON.stringify(body));
        };
        if (req.method !== 'POST' || req.url !== '/v1/models/classifier:predict') return send(404, { error: 'no such route' });
        const n = ++state.requests;
        if (o.echoKey) return send(400, { error: `bad request from client with header "${req.headers.authorization}"` });
        if (req.headers.authorization !== `Bearer ${o.key}`) return send(401, { error: 'missing or wrong bearer key' });
        if (o.throttle?.includes(n)) {
          state.throttled++;
          return send(429, { error: 'slow down' }, { 'Retry-After': '1' });
        }
        const idem = req.headers['idempotency-key'];
        if (typeof idem === 'string' && replies.has(idem)) {
          state.replayed++;
          return send(200, replies.get(idem)!);
        }
        let body: { instances?: { b64?: string }[]; signature_name?: string };
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return send(400, { error: 'not JSON' });
        }
        if (body.signature_name !== 'serving_default' || !Array.isArray(body.instances) || body.instances.length === 0) {
          return send(400, { error: 'expected {"signature_name": "serving_default", "instances": [{"b64": ...}]}' });
        }
        const outputs = [];
        for (const inst of body.instances) {
          const buf = Buffer.from(inst.b64 ?? '', 'base64');
          const meta = await sharp(buf).metadata().catch(() => undefined);
          if (!meta || meta.format !== 'jpeg' || meta.width !== 64 || meta.height !== 64) {
            return send(400, { error: `want 64x64 JPEG, got ${meta ? `${meta.width}x${meta.height} ${meta.format}` : 'garbage'}` });
          }
          const { channels } = await sharp(buf).stats();
          const top = nearest(channels.slice(0, 3).map((c) => c.mean));
          outputs.push({ top: PALETTE[top].name, scores: scoresFor(top) });
        }
        const text = JSON.stringify({ outputs, model_version: '7' });
        state.charged += outputs.length;
        state.batches.push(outputs.length);
        if (typeof idem === 'string') replies.set(idem, text);
        o.onCharged?.();
        if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
        if (o.loseAnswer?.includes(n)) return send(503, { error: 'upstream hiccup' });
        send(200, text);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}/v1/models/classifier:predict`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as FakeApi;
}

/** 24 distinct 32x32 PNGs (two per palette colour, each with its own faint pattern) plus one exact duplicate. */
async function writeImages(dir: string): Promise<Map<string, number>> {
  fs.mkdirSync(dir, { recursive: true });
  const expected = new Map<string, number>();
  for (let i = 0; i < PALETTE.length * 2; i++) {
    const c = i % PALETTE.length;
    const px = Buffer.alloc(32 * 32 * 3);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        // -4..5 in a pattern per variant: the mean stays near the palette colour, every image is unique.
        const d = ((x * (1 + Math.floor(i / PALETTE.length)) + y) % 4) * 3 - 4;
        for (let ch = 0; ch < 3; ch++) px[(y * 32 + x) * 3 + ch] = Math.max(0, Math.min(255, PALETTE[c].rgb[ch] + d));
      }
    }
    const file = `img${String(i).padStart(2, '0')}.png`;
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(dir, file));
    expected.set(file, c);
  }
  fs.copyFileSync(path.join(dir, 'img00.png'), path.join(dir, 'img24-dup.png'));
  expected.set('img24-dup.png', 0);
  return expected;
}

function runSteal(args: string[], env: Record<string, string>, onChild?: (kill: (sig: NodeJS.Signals) => void) => void): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(ROOT, 'scripts/steal.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, COPYCAT_PROGRESS: 'lines', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    onChild?.((sig) => child.kill(sig));
  });
}

function lastJsonLine(stdout: string): StealSummary {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as StealSummary;
}

function writeAdapter(file: string, url: string, patch: (a: Record<string, unknown>) => void = () => undefined): string {
  const a = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8')) as Record<string, unknown>;
  a.url = url;
  patch(a);
  fs.writeFileSync(file, JSON.stringify(a, null, 2));
  return file;
}

describe('npm run steal with an adapter file (fake third-party API on 127.0.0.1)', function () {
  this.timeout(60_000);
  const key = `sk-secret-${crypto.randomBytes(8).toString('hex')}`;
  let work: string;
  let images: string;
  let expected: Map<string, number>;
  let api: FakeApi;
  let adapter: string;
  let out: string;
  let env: Record<string, string>;

  let sigint: ((sig: NodeJS.Signals) => void) | undefined;

  before(async () => {
    work = tmpDir('steal');
    images = path.join(work, 'npd');
    expected = await writeImages(images);
    // Request 2 is throttled; request 4's images are charged but the answer is lost (503): the retry must
    // carry the same idempotency key so the API replays instead of charging again. The first charged
    // request can interrupt the steal command (SIGINT) while others are in flight.
    api = await startFakeApi({
      key, throttle: [2], loseAnswer: [4], delayMs: 250,
      onCharged: () => {
        sigint?.('SIGINT');
        sigint = undefined;
      },
    });
    adapter = writeAdapter(path.join(work, 'api.json'), api.url);
    out = path.join(work, 'out', 'stolen.json');
    env = { EXAMPLE_API_KEY: key, COPYCAT_DATA_DIR: path.join(work, 'data') };
  });
  after(async () => api?.close());

  it('Ctrl-C stops new requests and stores the answers in flight; the rerun labels every image as the API answered', async () => {
    const args = ['--source', images, '--oracle', `adapter:${adapter}`, '--out', out, '--seed', '3'];
    const stopped = await runSteal(args, env, (kill) => (sigint = kill));
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /SIGINT: no new requests/);
    assert.ok(!fs.existsSync(out));
    assert.ok(api.charged > 0 && api.charged < 24, `charged ${api.charged} before the stop`);
    // Every image the API charged is on disk (the raw store of API answers, written per response).
    const stored = fs.readFileSync(path.join(work, 'out', 'stolen.api-answers.jsonl'), 'utf8').trim().split('\n').length - 1;
    assert.equal(stored, api.charged);
    const chargedBefore = api.charged;

    const r = await runSteal(args, env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!`${stopped.stdout}${stopped.stderr}${r.stdout}${r.stderr}`.includes(key), 'the API key appeared in the output');
    const s = lastJsonLine(r.stdout);
    const stolen = loadStolenLabels(out) as OutsideStolenSet;

    // 25 files, 24 distinct images; 4 of the distinct ones (toaster, zebra) are unmapped.
    const unmappedIds = [...expected].filter(([, c]) => MAP_TO_CIFAR[PALETTE[c].name] === undefined).map(([id]) => id).sort();
    assert.equal(s.images, 25);
    assert.equal(s.unmapped, unmappedIds.length);
    assert.equal(s.kept, 25 - unmappedIds.length);
    assert.deepEqual(s.unmappedNames, { toaster: 2, zebra: 2 });
    assert.deepEqual([...(stolen.unmapped.ids ?? [])].sort(), unmappedIds);
    assert.equal(stolen.unmapped.count, 4);

    // Each kept image carries the CIFAR-10 class its API answer maps to.
    assert.equal(stolen.n, 21);
    assert.deepEqual(stolen.oracle.classNames, [...CIFAR10_CLASSES]);
    assert.equal(stolen.oracle.numClasses, 10);
    stolen.ids!.forEach((id, i) => {
      const want = MAP_TO_CIFAR[PALETTE[expected.get(id)!].name];
      assert.ok(want, `${id} is unmapped but in the set`);
      assert.equal(CIFAR10_CLASSES[stolen.labels[i]], want, `label of ${id}`);
    });

    // Paid once per distinct image over both runs: the 429 was waited out, the lost answer replayed.
    assert.equal(api.charged, 24);
    assert.equal(api.throttled, 1);
    assert.ok(api.replayed >= 1);
    assert.ok(api.batches.every((b) => b <= 4), `batches ${api.batches}`);
    // Answers of the first run are not asked again (a replayed request counts as arrived, so >=).
    assert.ok(s.queries >= 24 - chargedBefore && s.queries < 24, `queries ${s.queries}`);
    assert.equal(s.fromCache, 24 - s.queries);
    assert.equal(s.complete, true);
    assert.equal(stolen.queries.distinct, 24);
    assert.equal(stolen.cost.usd, 0.036); // 24 images at $1.5 / 1000
    assert.equal(stolen.npd.source.kind, 'folder');
  });

  it('an edited class map relabels from the stored API answers without a request', async () => {
    const before = api.requests;
    // "toaster" now counts as a truck: new labels, nothing paid.
    const remapped = writeAdapter(path.join(work, 'api-remapped.json'), api.url, (a) => ((a.classMap as Record<string, string>).toaster = 'truck'));
    const out2 = path.join(work, 'out', 'stolen.json');
    const r2 = await runSteal(['--source', images, '--oracle', `adapter:${remapped}`, '--out', out2, '--seed', '3'], env);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(api.requests, before);
    const s2 = lastJsonLine(r2.stdout);
    assert.equal(s2.queries, 0);
    assert.equal(s2.unmapped, 2);
    const stolen = loadStolenLabels(out2);
    const i = stolen.ids!.findIndex((id) => PALETTE[expected.get(id)!].name === 'toaster');
    assert.equal(CIFAR10_CLASSES[stolen.labels[i]], 'truck');
  });

  it('loads back with its images as the copycat training set', async () => {
    const { stolen, set } = await loadStolenSetWithImages(out, { npd: { dataDir: path.join(work, 'data') } });
    assert.equal(set.n, stolen.n);
    assert.deepEqual(Array.from(set.labels!), stolen.labels);
    assert.deepEqual(set.ids, stolen.ids);
  });

  it('is the stolen set 03_copycat trains on (query.stolenFile), scored against the run\'s oracle', async function () {
    this.timeout(300_000);
    await initBackend();
    const said: string[] = [];
    const hooks = { log: (l: string) => said.push(l), onBatch: () => undefined };
    const tiny = tinyOverrides(await npdFolder(96));
    const run = openRun({ profile: 'smoke', dir: path.join(work, 'run'), overrides: { ...tiny, query: { stolenFile: out }, copycat: { ...tiny.copycat, sets: ['NPD-SL'] } } });
    await trainOracle(run, hooks);
    await stealLabels(run, hooks);
    const stolen = loadStolenLabels(out);
    assert.match(said.join('\n'), new RegExp(`stolen NPD-SL: ${stolen.n} labels from .*stolen\\.json \\(answered by `));
    const copy = await trainCopycat(run, 'NPD-SL', hooks);
    assert.equal(copy.trainImages, stolen.n, 'trained on the outside labels, not the run oracle\'s');
    assert.equal(copy.queries, stolen.queries.distinct);
    assert.ok(copy.agreement >= 0 && copy.agreement <= 1);
    // A rerun with the same file reuses the copy; the key follows the file's answers, not its path.
    said.length = 0;
    await trainCopycat(run, 'NPD-SL', hooks);
    assert.match(said.join('\n'), /copycat NPD-SL: reused/);
  });

  it('redacts the key from an error body that echoes it', async () => {
    const echo = await startFakeApi({ key, echoKey: true });
    try {
      const a = writeAdapter(path.join(work, 'echo.json'), echo.url, (x) => (x.concurrency = 1));
      const r = await runSteal(['--source', images, '--oracle', `adapter:${a}`, '--out', path.join(work, 'echo', 'stolen.json')], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /answered 400/);
      assert.match(r.stderr, /\[redacted\]/);
      assert.ok(!r.stdout.includes(key) && !r.stderr.includes(key), 'the API key appeared in the output');
      assert.equal(echo.requests, 1, 'a 400 is not retried');
    } finally {
      await echo.close();
    }
  });
});

describe('AdapterOracle (in process)', function () {
  this.timeout(30_000);
  const key = 'sk-inproc-1';
  let api: FakeApi;
  let work: string;
  before(async () => {
    api = await startFakeApi({ key });
    work = tmpDir('adapter');
  });
  after(async () => api?.close());

  async function paletteImages(idx: number[]): Promise<ImageSet> {
    const images = new Uint8Array(idx.length * 32 * 32 * 3);
    idx.forEach((c, k) => {
      for (let p = 0; p < 32 * 32; p++) images.set(PALETTE[c].rgb, (k * 32 * 32 + p) * 3);
    });
    return { images, n: idx.length, height: 32, width: 32 };
  }

  it('probabilities: scores of API classes mapped to the same attack class add up, unmapped mass is left out', async () => {
    const spec = loadAdapterFile(writeAdapter(path.join(work, 'p.json'), api.url));
    const oracle = new AdapterOracle(spec, { answer: 'probabilities', env: { EXAMPLE_API_KEY: key } });
    const [tabby, toaster] = await oracle.query(await paletteImages([3, 10]));
    const s = scoresFor(3);
    const mapped = Object.entries(s).filter(([n]) => MAP_TO_CIFAR[n]);
    const total = mapped.reduce((a, [, p]) => a + p, 0);
    assert.equal(tabby.label, 3); // cat
    assert.equal(tabby.probs!.length, 11);
    assert.ok(Math.abs(tabby.probs![3] - (s['Tabby Cat'] + s.cat) / total) < 1e-9);
    assert.ok(Math.abs(tabby.probs![9] - s['fire truck'] / total) < 1e-9);
    assert.equal(tabby.probs![10], 0);
    assert.equal(toaster.label, oracle.unmappedLabel);
    assert.equal(oracle.info.classNames![10], UNMAPPED);
    assert.deepEqual(oracle.adapterStats().unmappedNames, { toaster: 1 });
  });

  it('topk: the k best attack classes after mapping', async () => {
    const spec = loadAdapterFile(writeAdapter(path.join(work, 't.json'), api.url));
    const oracle = new AdapterOracle(spec, { answer: 'topk:2', env: { EXAMPLE_API_KEY: key } });
    const [a] = await oracle.query(await paletteImages([4]));
    assert.equal(a.label, 3);
    assert.equal(a.topk!.length, 2);
    assert.equal(a.topk![0].label, 3);
    assert.ok(a.topk![0].p > a.topk![1].p);
  });

  it('stops new requests on abort and hands over the answers that arrived', async () => {
    const spec = loadAdapterFile(writeAdapter(path.join(work, 'a.json'), api.url, (a) => {
      a.concurrency = 1;
      (a.request as Record<string, unknown>).maxImagesPerRequest = 1;
    }));
    const stop = new AbortController();
    const oracle = new AdapterOracle(spec, { env: { EXAMPLE_API_KEY: key }, signal: stop.signal, ratePerMinute: 60 });
    const p = oracle.query(await paletteImages([0, 1, 2, 3]));
    setTimeout(() => stop.abort(new Error('stop')), 300); // the bucket lets one image through per second
    await assert.rejects(p, (e: Error) => {
      const partial = partialAnswersOf(e);
      assert.ok(partial && partial[0]?.label === 0 && partial[3] === undefined);
      return true;
    });
    assert.equal(oracle.stats().queries, 1);
  });

  it('keeps API answers in its raw store: a torn last line is cut off, stored answers are not asked again', async () => {
    const spec = loadAdapterFile(writeAdapter(path.join(work, 'r.json'), api.url));
    const store = path.join(work, 'raw.jsonl');
    const imgs = await paletteImages([0, 10, 5]);
    const first = new AdapterOracle(spec, { env: { EXAMPLE_API_KEY: key }, rawStoreFile: store });
    const a = await first.query(imgs);
    first.close();
    fs.appendFileSync(store, '{"h":"0123'); // a kill mid-write
    const before = api.requests;
    const second = new AdapterOracle(spec, { env: { EXAMPLE_API_KEY: key }, rawStoreFile: store });
    assert.deepEqual(await second.query(imgs), a);
    second.close();
    assert.equal(api.requests, before);
    assert.equal(second.stats().queries, 0);
    assert.ok(fs.readFileSync(store, 'utf8').endsWith('}\n'));
    // Another endpoint is refused rather than mixed in.
    const other = loadAdapterFile(writeAdapter(path.join(work, 'r2.json'), `${api.url}?v=2`));
    assert.throws(() => new AdapterOracle(other, { env: { EXAMPLE_API_KEY: key }, rawStoreFile: store }), /was written for other API settings/);
  });

  it('sends raw bodies and multipart forms, and reads [{label, score}] lists', async () => {
    const seen: string[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const buf = Buffer.concat(chunks);
          const ct = String(req.headers['content-type']);
          let file: Buffer;
          if (ct.startsWith('multipart/form-data')) {
            const form = await new Response(buf, { headers: { 'content-type': ct } }).formData();
            const f = form.get('upload') as Blob;
            seen.push(`multipart ${form.get('model')} ${f.type}`);
            file = Buffer.from(await f.arrayBuffer());
          } else {
            seen.push(`raw ${ct} ${req.headers['x-api-key']}`);
            file = buf;
          }
          const meta = await sharp(file).metadata();
          seen.push(`${meta.format} ${meta.width}x${meta.height}`);
          const { channels } = await sharp(file).stats();
          const top = nearest(channels.slice(0, 3).map((c) => c.mean));
          res.writeHead(200, { 'Content-Type': 'application/json' });
          // Hugging Face-style: a bare list, best first.
          res.end(JSON.stringify([{ label: PALETTE[top].name, score: 0.7 }, { label: 'zebra', score: 0.3 }]));
        })();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/classify`;
    try {
      const common = { url, classMap: { dog: 'dog', airliner: 'airplane' }, response: { scores: '$' }, image: { format: 'png', width: 48 } };
      const raw = parseAdapter({ ...common, auth: { env: 'K', header: 'X-Api-Key' }, request: { encoding: 'raw' } }, 'raw.json');
      const [d, z] = await new AdapterOracle(raw, { env: { K: 'k1' } }).query(await paletteImages([5, 11]));
      assert.equal(d.label, 5);
      assert.equal(z.label, 10); // zebra: unmapped
      const mp = parseAdapter({ ...common, request: { encoding: 'multipart', field: 'upload', fields: { model: 'v3' } } }, 'mp.json');
      const [a] = await new AdapterOracle(mp, { answer: 'probabilities' }).query(await paletteImages([0]));
      assert.equal(a.label, 0);
      assert.equal(a.probs![0], 1); // zebra's 0.3 is unmapped mass: dropped
      assert.deepEqual(seen.sort(), ['multipart v3 image/png', 'png 48x48', 'png 48x48', 'png 48x48', 'raw image/png k1', 'raw image/png k1']);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('needs the key in the environment variable the file names', () => {
    const spec = loadAdapterFile(writeAdapter(path.join(work, 'k.json'), api.url));
    assert.throws(() => new AdapterOracle(spec, { env: {} }), /environment variable EXAMPLE_API_KEY, which is not set/);
  });
});

describe('adapter file validation', () => {
  const base = (): Record<string, unknown> => JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
  const check = (patch: (a: Record<string, unknown>) => void, re: RegExp): void => {
    const a = base();
    patch(a);
    assert.throws(() => parseAdapter(a, 'my-adapter.json'), (e: Error) => {
      assert.ok(e instanceof AdapterFileError, e.message);
      assert.match(e.message, /^adapter file my-adapter\.json: /);
      assert.match(e.message, re);
      return true;
    });
  };

  it('accepts the documented example', () => {
    const spec = loadAdapterFile(EXAMPLE);
    assert.equal(spec.request.batch, true);
    assert.equal(spec.classMap.get('tabby cat'), 3);
    assert.equal(spec.image.format, 'jpeg');
  });

  it('names the file, the field and what was expected', () => {
    check((a) => delete a.url, /field 'url' must be a non-empty string/);
    check((a) => (a.url = 'ftp://x/y'), /field 'url' must be an http/);
    check((a) => (a.url = 'https://user:sk-123@api.example.com/v1'), /field 'url' must not hold a user name or password/);
    check((a) => (a.respone = {}), /field 'respone' is not a known field/);
    check((a) => ((a.auth as Record<string, unknown>).env = 'sk-live-123'), /field 'auth.env' must be the NAME of an environment variable/);
    check((a) => ((a.classMap as Record<string, unknown>).toaster = 'kitchen'), /field 'classMap.toaster' must be one of the attack's classes: airplane, automobile/);
    check((a) => (a.classMap = {}), /field 'classMap' must map at least one/);
    check((a) => ((a.request as Record<string, unknown>).imageField = 'a[][]'), /field 'request.imageField' may hold '\[\]'/);
    check((a) => ((a.response as Record<string, unknown>).label = 'outputs[0].top'), /field 'response.label' must hold exactly one '\[\*\]'/);
    check((a) => ((a.response as Record<string, unknown>).scores = 'outputs[*.scores'), /field 'response.scores' must be a path/);
    check((a) => (a.response = {}), /field 'response' needs 'label'/);
    check((a) => ((a.image as Record<string, unknown>).format = 'gif'), /field 'image.format' must be 'jpeg', 'png' or 'webp' \(got "gif"\)/);
    check((a) => ((a.image as Record<string, unknown>).width = 0), /field 'image.width' must be an integer in 1..4096/);
    check((a) => ((a.request as Record<string, unknown>).headers = { Authorization: 'Bearer x' }), /duplicates the auth header/);
    check((a) => ((a.request as Record<string, unknown>).encoding = 'raw'), /field 'request.imageField' is for encoding 'json' only/);
    check((a) => (a.request = { encoding: 'multipart', maxImagesPerRequest: 4 }), /field 'request.maxImagesPerRequest' must be 1/);
  });

  it('reports unreadable and non-JSON files by name', () => {
    const dir = tmpDir('adapter-bad');
    const f = path.join(dir, 'broken.json');
    fs.writeFileSync(f, '{ "url": ');
    assert.throws(() => loadAdapterFile(f), new RegExp(`adapter file ${f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`));
    assert.throws(() => loadAdapterFile(path.join(dir, 'missing.json')), /missing\.json: cannot read it \(ENOENT\)/);
  });

  it('parses answer paths', () => {
    assert.deepEqual(parsePath('outputs[*].scores'), ['outputs', '*', 'scores']);
    assert.deepEqual(parsePath('$.predictions[0].label'), ['predictions', 0, 'label']);
    assert.deepEqual(parsePath('$'), []);
    assert.deepEqual(parsePath('[*]'), ['*']);
    assert.throws(() => parsePath('a[0]b'), /expected '\.' or '\['/);
    assert.throws(() => parsePath('a..b'), /expected a key/);
  });

  it('parses --source and --oracle specs', () => {
    assert.deepEqual(parseSourceSpec('tiny-imagenet'), { kind: 'tiny-imagenet' });
    assert.deepEqual(parseSourceSpec('coco-val2017'), { kind: 'coco-val2017' });
    assert.equal(parseSourceSpec('zip:x.zip').kind, 'zip');
    assert.throws(() => parseSourceSpec('/no/such/thing'), /no such file or folder; expected a folder, a \.zip/);
    assert.throws(() => parseSourceSpec('tiny-imagenet-rest20k', { mirrorDir: '/nonexistent' }), /tiny-imagenet-200-train-rest20k\.zip not found/);
    assert.deepEqual(parseOracleSpec('http:http://127.0.0.1:8080'), { kind: 'http', url: 'http://127.0.0.1:8080' });
    assert.deepEqual(parseOracleSpec('local:data/runs/x/oracle'), { kind: 'local', dir: 'data/runs/x/oracle' });
    assert.throws(() => parseOracleSpec('azure'), /expected local:<modelDir>, http:<url> or adapter:<file.json>/);
  });
});
