import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import type { AddressInfo } from 'net';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { QueryBudgetExceeded } from '../src/oracle/budget';
import { HttpOracle, partialAnswersOf } from '../src/oracle/client';
import { encodePng } from '../src/oracle/decode';
import { LocalOracle } from '../src/oracle/local';
import { startOracleServer, type OracleServer, type OracleServerOptions } from '../src/oracle/server';
import { saveModel } from '../src/io';
import { labelImages } from '../src/stolenLabels';
import { CountingOracle, randomImages, tinyModel, tmpDir } from './oracleFixtures';

const KEY = 'sk-test-alice';

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const isBuf = Buffer.isBuffer(body);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': isBuf ? 'image/png' : 'application/json', ...headers },
    body: isBuf ? (body as Buffer) : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

describe('oracle: HTTP server', function () {
  const model = tinyModel();
  const set = randomImages(12);
  let srv: OracleServer;
  const logs: string[] = [];
  const servers: OracleServer[] = [];
  let truth: number[];

  async function start(extra: Partial<OracleServerOptions> = {}): Promise<OracleServer> {
    const s = await startOracleServer({ oracle: new LocalOracle(model), keys: [{ key: KEY, id: 'alice' }], log: (l) => logs.push(l), ...extra });
    servers.push(s);
    return s;
  }
  const b64 = async (i: number): Promise<string> => (await encodePng(set.images, i, 8, 8)).toString('base64');

  before(async () => {
    await tf.setBackend('cpu');
    truth = (await new LocalOracle(model).query(set)).map((a) => a.label);
    srv = await start();
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('binds to 127.0.0.1 and serves /v1/health without a key', async () => {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${srv.url}/v1/health`);
    assert.equal(res.status, 200);
    const h = (await res.json()) as any;
    assert.equal(h.status, 'ok');
    assert.deepEqual(h.mode, { mode: 'label' });
    assert.deepEqual(h.input, { height: 8, width: 8 });
    assert.equal(h.numClasses, 10);
    assert.equal((await fetch(`${srv.url}/v1/health`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${srv.url}/v2/nothing`)).status, 404);
  });

  it('401 without a key, 403 with a wrong one', async () => {
    const r1 = await post(`${srv.url}/v1/classify/batch`, { images: [await b64(0)] });
    assert.equal(r1.status, 401);
    assert.equal(r1.json.error.code, 'missing_api_key');
    const r2 = await post(`${srv.url}/v1/classify/batch`, { images: [await b64(0)] }, { 'X-API-Key': 'sk-wrong' });
    assert.equal(r2.status, 403);
    assert.equal(r2.json.error.code, 'invalid_api_key');
    const r3 = await post(`${srv.url}/v1/classify/batch`, { images: [await b64(0)] }, { Authorization: `Bearer ${KEY}` });
    assert.equal(r3.status, 200);
  });

  it('classifies a raw PNG, a JSON base64 image, a batch, a 64x64 JPEG and a grayscale PNG', async () => {
    const png = await encodePng(set.images, 3, 8, 8);
    const r1 = await post(`${srv.url}/v1/classify`, png, { 'X-API-Key': KEY });
    assert.equal(r1.status, 200);
    assert.deepEqual(r1.json.answer, { label: truth[3] }, 'lossless PNG: same pixels, same answer as the local oracle');
    const r2 = await post(`${srv.url}/v1/classify`, { image: png.toString('base64') }, { 'X-API-Key': KEY });
    assert.deepEqual(r2.json.answer, { label: truth[3] });
    const batch = await Promise.all(Array.from({ length: 12 }, (_, i) => b64(i)));
    const r3 = await post(`${srv.url}/v1/classify/batch`, { images: batch }, { 'X-API-Key': KEY });
    assert.deepEqual(r3.json.answers.map((a: { label: number }) => a.label), truth);
    assert.equal(r3.json.usage.images, 12);
    const jpg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 90 } } }).jpeg().toBuffer();
    const r4 = await post(`${srv.url}/v1/classify`, jpg, { 'X-API-Key': KEY, 'Content-Type': 'image/jpeg' });
    assert.equal(r4.status, 200);
    assert.ok(Number.isInteger(r4.json.answer.label));
    const gray = await sharp(Buffer.alloc(16 * 16, 128), { raw: { width: 16, height: 16, channels: 1 } }).png().toBuffer();
    assert.equal((await post(`${srv.url}/v1/classify`, gray, { 'X-API-Key': KEY })).status, 200);
  });

  it('400 for a non-image or bad base64 (with the index), 415 for a wrong content type', async () => {
    const r1 = await post(`${srv.url}/v1/classify`, Buffer.from('hello, not an image'), { 'X-API-Key': KEY });
    assert.equal(r1.status, 400);
    assert.equal(r1.json.error.code, 'invalid_image');
    assert.match(r1.json.error.message, /not a decodable image/);
    const r2 = await post(`${srv.url}/v1/classify/batch`, { images: [await b64(0), Buffer.from('nope').toString('base64')] }, { 'X-API-Key': KEY });
    assert.equal(r2.status, 400);
    assert.equal(r2.json.error.index, 1);
    const r3 = await post(`${srv.url}/v1/classify/batch`, { images: ['***'] }, { 'X-API-Key': KEY });
    assert.equal(r3.status, 400);
    assert.match(r3.json.error.message, /images\[0\]' is not valid base64/);
    const r4 = await post(`${srv.url}/v1/classify/batch`, { pictures: [] }, { 'X-API-Key': KEY });
    assert.equal(r4.json.error.code, 'invalid_request');
    const r5 = await post(`${srv.url}/v1/classify`, Buffer.from('x'), { 'X-API-Key': KEY, 'Content-Type': 'text/plain' });
    assert.equal(r5.status, 415);
  });

  it('413 for a body over the limit and for too many images (with maxImages)', async () => {
    const s = await start({ maxBodyBytes: 2000, maxImagesPerRequest: 3 });
    const big = await post(`${s.url}/v1/classify`, Buffer.alloc(5000, 1), { 'X-API-Key': KEY });
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'payload_too_large');
    assert.equal(big.json.error.maxBytes, 2000);
    const many = await post(`${s.url}/v1/classify/batch`, { images: ['a', 'b', 'c', 'd'] }, { 'X-API-Key': KEY });
    assert.equal(many.status, 413);
    assert.equal(many.json.error.maxImages, 3);
    assert.equal(s.stats().images, 0);
  });

  it('per-key quota: 429 quota_exceeded without Retry-After, nothing charged for refused images', async () => {
    const s = await start({ keys: [{ key: KEY, id: 'alice', quota: 3 }, { key: 'sk-bob', id: 'bob' }] });
    const two = { images: [await b64(0), await b64(1)] };
    const ok = await post(`${s.url}/v1/classify/batch`, two, { 'X-API-Key': KEY });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json.usage, { images: 2, used: 2, quota: 3, remaining: 1 });
    const no = await post(`${s.url}/v1/classify/batch`, two, { 'X-API-Key': KEY });
    assert.equal(no.status, 429);
    assert.equal(no.json.error.code, 'quota_exceeded');
    assert.equal(no.headers.get('retry-after'), null);
    assert.equal((await post(`${s.url}/v1/classify/batch`, two, { 'X-API-Key': 'sk-bob' })).status, 200, 'quota is per key');
    const st = s.stats();
    assert.equal(st.byKey.alice.images, 2);
    assert.equal(st.byKey.alice.rejected, 1);
    assert.equal(st.images, 4);
  });

  it('rate limit: 429 rate_limited with Retry-After in seconds once the burst is spent', async () => {
    const s = await start({ keys: [{ key: KEY, id: 'alice', ratePerMinute: 20, burst: 2 }] });
    const one = { images: [await b64(0)] };
    assert.equal((await post(`${s.url}/v1/classify/batch`, one, { 'X-API-Key': KEY })).status, 200);
    assert.equal((await post(`${s.url}/v1/classify/batch`, one, { 'X-API-Key': KEY })).status, 200);
    const r = await post(`${s.url}/v1/classify/batch`, one, { 'X-API-Key': KEY });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, 'rate_limited');
    // 20 images/minute = one per 3 s.
    assert.equal(r.headers.get('retry-after'), '3');
    const tooBig = await post(`${s.url}/v1/classify/batch`, { images: [await b64(0), await b64(1), await b64(2)] }, { 'X-API-Key': KEY });
    assert.equal(tooBig.status, 413, 'a batch above the burst could never pass');
    assert.equal(tooBig.json.error.maxImages, 2);
    assert.equal(s.stats().images, 2);
  });

  it('replays a retried Idempotency-Key without charging again', async () => {
    const s = await start();
    const body = { images: [await b64(0), await b64(1)] };
    const h = { 'X-API-Key': KEY, 'Idempotency-Key': 'req-1' };
    const a = await post(`${s.url}/v1/classify/batch`, body, h);
    const b = await post(`${s.url}/v1/classify/batch`, body, h);
    assert.deepEqual(a.json, b.json);
    assert.equal(s.stats().images, 2);
    assert.equal(s.stats().replayed, 1);
    await post(`${s.url}/v1/classify/batch`, body, { ...h, 'Idempotency-Key': 'req-2' });
    assert.equal(s.stats().images, 4);
  });

  it('logs one line per request with method, path, key id, images, status and ms', () => {
    const line = logs.find((l) => l.includes('status=200') && l.includes('images=12'));
    assert.ok(line, 'a line for the 12-image batch');
    assert.match(line!, /POST \/v1\/classify\/batch key=alice images=12 status=200 ms=\d+\.\d/);
    assert.ok(logs.some((l) => /key=- images=0 status=401/.test(l)));
  });
});

/** Writes `bytes` on a raw TCP connection and returns what comes back (or destroys it after `destroyAfterMs`). */
function rawRequest(url: string, bytes: string | Buffer, destroyAfterMs?: number): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    let out = '';
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(bytes);
      if (destroyAfterMs !== undefined) setTimeout(() => sock.destroy(), destroyAfterMs);
    });
    sock.on('data', (d) => (out += d));
    sock.on('close', () => resolve(out));
    sock.on('error', () => undefined);
  });
}

/** Status and JSON body of a raw HTTP/1.1 response. */
function parseRaw(text: string): { status: number; json: any } {
  const [head, ...rest] = text.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), json: JSON.parse(rest.join('\r\n\r\n')) };
}

const waitFor = async (cond: () => boolean, ms = 2000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('oracle: HTTP server charges once per key and answers every error in JSON', function () {
  const model = tinyModel();
  const set = randomImages(6, 8, 'once');
  const servers: OracleServer[] = [];
  async function start(extra: Partial<OracleServerOptions> = {}): Promise<OracleServer> {
    const s = await startOracleServer({ oracle: new LocalOracle(model), keys: [{ key: KEY, id: 'alice' }], log: false, ...extra });
    servers.push(s);
    return s;
  }
  /** Image i of the set as a 64x64 JPEG: sharp decodes it (the path that was charged once per request, not per key). */
  const jpeg = (i: number): Promise<Buffer> =>
    sharp(Buffer.from(set.images.subarray(i * 192, (i + 1) * 192)), { raw: { width: 8, height: 8, channels: 3 } }).resize(64, 64).jpeg().toBuffer();

  before(async () => {
    await tf.setBackend('cpu');
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  it('4 concurrent requests with one Idempotency-Key (JPEG, sharp decoder) are charged once and answered alike', async () => {
    const counting = new CountingOracle(new LocalOracle(model), () => 50);
    const s = await start({ oracle: counting });
    const body = { images: (await Promise.all([0, 1, 2].map(jpeg))).map((b) => b.toString('base64')) };
    const h = { 'X-API-Key': KEY, 'Idempotency-Key': 'one-key' };
    const rs = await Promise.all(Array.from({ length: 4 }, () => post(`${s.url}/v1/classify/batch`, body, h)));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200]);
    for (const r of rs) assert.deepEqual(r.json, rs[0].json, 'every request gets the first one\'s answer');
    assert.equal(counting.images, 3, 'the model saw the images once');
    assert.equal(s.stats().images, 3, 'charged once');
    assert.equal(s.stats().replayed, 3);
    assert.equal(s.stats().byKey.alice.images, 3);
    // A PNG at another size than the model's also goes through sharp.
    const png16 = await sharp(Buffer.from(set.images.subarray(0, 192)), { raw: { width: 8, height: 8, channels: 3 } }).resize(16, 16).png().toBuffer();
    const h2 = { 'X-API-Key': KEY, 'Idempotency-Key': 'png-key' };
    const rs2 = await Promise.all(Array.from({ length: 4 }, () => post(`${s.url}/v1/classify`, png16, h2)));
    assert.deepEqual(rs2.map((r) => r.status), [200, 200, 200, 200]);
    assert.equal(s.stats().images, 4);
  });

  it('a known key with other images: 409 idempotency_conflict (JSON), in flight or answered, nothing charged', async () => {
    const counting = new CountingOracle(new LocalOracle(model), () => 50);
    const s = await start({ oracle: counting });
    const a = { images: [(await encodePng(set.images, 0, 8, 8)).toString('base64')] };
    const b = { images: [(await encodePng(set.images, 1, 8, 8)).toString('base64')] };
    const h = { 'X-API-Key': KEY, 'Idempotency-Key': 'k-409' };
    const [first, inFlight] = await Promise.all([post(`${s.url}/v1/classify/batch`, a, h), post(`${s.url}/v1/classify/batch`, b, h)]);
    assert.equal(first.status, 200);
    assert.equal(inFlight.status, 409);
    assert.equal(inFlight.json.error.code, 'idempotency_conflict');
    const later = await post(`${s.url}/v1/classify/batch`, b, h);
    assert.equal(later.status, 409, 'never the old images\' answers');
    assert.equal(s.stats().images, 1);
    assert.equal(counting.images, 1);
    // Keys are per API key: another client may use the same string.
    const other = await startOracleServer({ oracle: new LocalOracle(model), keys: [{ key: KEY, id: 'alice' }, { key: 'sk-bob', id: 'bob' }], log: false });
    servers.push(other);
    await post(`${other.url}/v1/classify/batch`, a, h);
    assert.equal((await post(`${other.url}/v1/classify/batch`, b, { ...h, 'X-API-Key': 'sk-bob' })).status, 200);
  });

  it('refusals of Node\'s HTTP layer are JSON too: bad Content-Length 400, headers too large 431, slow upload 408', async () => {
    const s = await start({ requestTimeoutMs: 300 });
    const bad = parseRaw(await rawRequest(s.url, 'POST /v1/classify/batch HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'bad_request');
    assert.match(bad.json.error.message, /Content-Length/);
    const big = parseRaw(await rawRequest(s.url, `GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`));
    assert.equal(big.status, 431);
    assert.equal(big.json.error.code, 'headers_too_large');
    const slow = parseRaw(await rawRequest(s.url, `POST /v1/classify/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ima`));
    assert.equal(slow.status, 408);
    assert.equal(slow.json.error.code, 'request_timeout');
    const st = s.stats();
    assert.deepEqual([st.byStatus['400'], st.byStatus['431'], st.byStatus['408']], [1, 1, 1]);
    assert.equal(st.aborted, 0, 'the timed-out request is counted once, as 408');
  });

  it('invalid UTF-8 in a JSON body is invalid_json, not invalid_image', async () => {
    const s = await start();
    const res = await fetch(`${s.url}/v1/classify/batch`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-API-Key': KEY },
      body: Buffer.concat([Buffer.from('{"images":["'), Buffer.from([0xff, 0xfe]), Buffer.from('"]}')]),
    });
    assert.equal(res.status, 400);
    const j = (await res.json()) as any;
    assert.equal(j.error.code, 'invalid_json');
    assert.match(j.error.message, /UTF-8/);
  });

  it('a client that leaves is counted as an abort (499), not a 500: mid-upload nothing is charged, mid-inference a retry replays', async () => {
    const counting = new CountingOracle(new LocalOracle(model), () => 200);
    const s = await start({ oracle: counting });
    const body = JSON.stringify({ images: [(await encodePng(set.images, 2, 8, 8)).toString('base64')] });
    const head = (len: number): string =>
      `POST /v1/classify/batch HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nIdempotency-Key: leave\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`;
    await rawRequest(s.url, head(body.length) + body.slice(0, 10), 50);
    await waitFor(() => s.stats().aborted === 1);
    assert.equal(s.stats().images, 0, 'an upload cut short is not charged');
    await rawRequest(s.url, head(body.length) + body, 80);
    await waitFor(() => s.stats().aborted === 2, 3000);
    assert.equal(s.stats().images, 1, 'answered after the client left: charged');
    assert.equal(s.stats().byStatus['500'], undefined);
    const retry = await post(`${s.url}/v1/classify/batch`, JSON.parse(body), { 'X-API-Key': KEY, 'Idempotency-Key': 'leave' });
    assert.equal(retry.status, 200);
    assert.equal(s.stats().images, 1, 'the retry with the key is replayed, not charged');
    assert.equal(counting.images, 1);
  });

  it('/v1/health shows no file path, and the identity digest of weights and answer settings', async () => {
    const dir = tmpDir('served-model');
    await saveModel(model, dir);
    const a = await start({ oracle: undefined, modelDir: dir });
    const b = await start({ oracle: undefined, modelDir: path.join(dir, '.', '..', path.basename(dir)) + '/' });
    const ha = (await (await fetch(`${a.url}/v1/health`)).json()) as any;
    const hb = (await (await fetch(`${b.url}/v1/health`)).json()) as any;
    assert.ok(!JSON.stringify(ha).includes(dir) && !/[/\\]/.test(ha.name), `no path in ${JSON.stringify(ha)}`);
    assert.match(ha.identity, /^sha256:[0-9a-f]{64}$/);
    assert.equal(ha.identity, hb.identity, 'the same model spelled differently is the same oracle');
    assert.equal(ha.identity, new LocalOracle(model).info.identity, 'the model\'s digest, wherever it is loaded from');
    assert.notEqual(new LocalOracle(model, { answer: 'topk:2' }).info.identity, ha.identity, 'answer settings are part of it');
    assert.notEqual(new LocalOracle(tinyModel(8, 10, 99)).info.identity, ha.identity, 'so are the weights');
    const client = await HttpOracle.connect({ url: b.url, apiKey: KEY });
    assert.equal(client.info.identity, ha.identity, 'the client keys its cache by the served oracle\'s identity');
    assert.ok(fs.existsSync(dir));
  });

  it('quota use is exact: the client shrinks the last request to what the quota leaves', async () => {
    const s = await start({ keys: [{ key: KEY, id: 'alice', quota: 10 }] });
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 4, concurrency: 2 });
    const images = randomImages(25, 8, 'quota');
    const cacheFile = path.join(tmpDir('quota'), 'q.jsonl');
    const e = await labelImages(o, images, { cacheFile, batchSize: 8, progress: false }).catch((x) => x);
    assert.ok(e instanceof QueryBudgetExceeded, String(e));
    assert.equal(s.stats().images, 10, 'all of the quota, nothing beyond');
    assert.equal(fs.readFileSync(cacheFile, 'utf8').trim().split('\n').length, 1 + 10, 'and every paid answer is cached');
    // A fresh client (another process) does not know the quota yet: the server's refusal says what is left.
    const s2 = await start({ keys: [{ key: KEY, id: 'alice', quota: 6 }] });
    const o2 = await HttpOracle.connect({ url: s2.url, apiKey: KEY, imagesPerRequest: 4, concurrency: 1 });
    const e2 = await labelImages(o2, images, { cacheFile: path.join(tmpDir('quota'), 'q.jsonl'), batchSize: 8, progress: false }).catch((x) => x);
    assert.ok(e2 instanceof QueryBudgetExceeded, String(e2));
    assert.equal(s2.stats().images, 6);
  });
});

/** A proxy in front of the server that misbehaves like a flaky network/API gateway. */
async function flakyProxy(upstream: string, decide: (n: number) => 'pass' | '429' | '500' | 'lose' | 'reset' | 'hang'): Promise<{ url: string; close(): Promise<void>; counts: Record<string, number> }> {
  let n = 0;
  const counts: Record<string, number> = {};
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      if (req.url === '/v1/health') {
        const r = await fetch(`${upstream}/v1/health`);
        res.writeHead(r.status, { 'Content-Type': 'application/json' });
        return res.end(await r.text());
      }
      const what = decide(n++);
      counts[what] = (counts[what] ?? 0) + 1;
      if (what === '429') {
        res.writeHead(429, { 'Retry-After': '0', 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ error: { code: 'rate_limited', message: 'slow down' } }));
      }
      if (what === '500') {
        res.writeHead(500);
        return res.end('oops');
      }
      if (what === 'reset') return req.socket.destroy();
      if (what === 'hang') return; // never answers: the client's timeout must fire
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'x-api-key', 'idempotency-key']) if (req.headers[h]) headers[h] = req.headers[h] as string;
      const r = await fetch(`${upstream}${req.url}`, { method: req.method, headers, body: Buffer.concat(chunks) });
      const text = await r.text();
      if (what === 'lose') {
        // The server answered (and charged) but the answer is lost on the way back.
        res.writeHead(502);
        return res.end('bad gateway');
      }
      const out: Record<string, string> = { 'Content-Type': 'application/json' };
      if (r.headers.get('retry-after')) out['Retry-After'] = r.headers.get('retry-after')!;
      res.writeHead(r.status, out);
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

describe('oracle: HttpOracle client', function () {
  const model = tinyModel();
  const set = randomImages(60, 8, 'client');
  let truth: number[];
  const cleanup: (() => Promise<void>)[] = [];

  before(async () => {
    await tf.setBackend('cpu');
    truth = (await new LocalOracle(model).query(set)).map((a) => a.label);
  });
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });
  async function server(extra: Partial<OracleServerOptions> = {}): Promise<OracleServer> {
    const s = await startOracleServer({ oracle: new LocalOracle(model), keys: [{ key: KEY, id: 'alice' }], log: false, ...extra });
    cleanup.push(() => s.close());
    return s;
  }

  it('answers exactly like the local oracle and counts what the server counts', async () => {
    const s = await server();
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 16, concurrency: 3 });
    assert.deepEqual(o.info.input, { height: 8, width: 8 });
    const ans = await o.query(set);
    assert.deepEqual(ans.map((a) => a.label), truth);
    assert.equal(o.stats().queries, 60);
    assert.equal(o.stats().requests, 4);
    assert.equal(o.stats().cost, 0.06);
    assert.equal(s.stats().images, 60);
    await assert.rejects(HttpOracle.connect({ url: s.url, apiKey: KEY, answer: 'probabilities' }), /server answers in mode \{"mode":"label"\}/);
  });

  it('through a flaky gateway (429, 500, lost answers, resets, a hang): every image labeled once, paid once', async () => {
    const s = await server();
    const rng = seedrandom('flaky');
    const p = await flakyProxy(s.url, (n) => {
      if (n === 1) return 'hang';
      if (n === 2) return 'lose';
      if (n === 3) return 'reset';
      const r = rng();
      return r < 0.2 ? '429' : r < 0.35 ? '500' : r < 0.45 ? 'lose' : r < 0.5 ? 'reset' : 'pass';
    });
    cleanup.push(() => p.close());
    const o = await HttpOracle.connect({ url: p.url, apiKey: KEY, imagesPerRequest: 5, concurrency: 3, backoffMs: 5, maxRetries: 20, timeoutMs: 500 });
    const ans = await o.query(set);
    assert.deepEqual(ans.map((a) => a.label), truth);
    assert.equal(o.stats().queries, 60, 'client counts each image once');
    assert.equal(s.stats().images, 60, 'server charged each image once (lost answers were replayed)');
    assert.ok(s.stats().replayed >= 1);
    assert.ok((p.counts['429'] ?? 0) > 0 && o.stats().throttled === p.counts['429']);
    assert.ok(o.stats().failedAttempts >= 3);
  });

  it('honours Retry-After seconds', async () => {
    const s = await server({ keys: [{ key: KEY, id: 'alice', ratePerMinute: 120, burst: 4 }] });
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 4, concurrency: 1 });
    const t0 = Date.now();
    const ans = await o.query({ ...set, n: 6, images: set.images.subarray(0, 6 * 192) });
    assert.deepEqual(ans.map((a) => a.label), truth.slice(0, 6));
    assert.ok(Date.now() - t0 >= 1000, 'waited for the server');
    assert.ok(o.stats().throttled >= 1);
    assert.equal(s.stats().images, 6);
  });

  it('a client-side rate limit avoids the 429s', async () => {
    const s = await server({ keys: [{ key: KEY, id: 'alice', ratePerMinute: 600, burst: 4 }] });
    // 10% under the server's limit: request timing jitter would otherwise let a request arrive a few ms early.
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 4, concurrency: 2, ratePerMinute: 540, burst: 4 });
    await o.query({ ...set, n: 8, images: set.images.subarray(0, 8 * 192) });
    assert.equal(o.stats().throttled, 0);
    assert.equal(s.stats().byStatus['429'] ?? 0, 0);
  });

  it('splits a batch on 413 too_many_images', async () => {
    const s = await server({ keys: [{ key: KEY, id: 'alice', ratePerMinute: 60000, burst: 3 }] });
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 10, concurrency: 1 });
    const ans = await o.query({ ...set, n: 10, images: set.images.subarray(0, 10 * 192) });
    assert.deepEqual(ans.map((a) => a.label), truth.slice(0, 10));
    assert.equal(s.stats().images, 10);
  });

  it('server quota spent: QueryBudgetExceeded, with the answers that did arrive attached', async () => {
    const s = await server({ keys: [{ key: KEY, id: 'alice', quota: 8 }] });
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, imagesPerRequest: 4, concurrency: 1 });
    const e = await o.query({ ...set, n: 10, images: set.images.subarray(0, 10 * 192) }).catch((x) => x);
    assert.ok(e instanceof QueryBudgetExceeded, String(e));
    assert.match(e.message, /server quota/);
    const partial = partialAnswersOf(e)!;
    assert.deepEqual(partial.slice(0, 8).map((a) => a!.label), truth.slice(0, 8));
    assert.equal(partial[9], undefined);
    assert.equal(o.stats().queries, 8);
  });

  it('client budget refuses before sending; 4xx errors are not retried', async () => {
    const s = await server();
    const o = await HttpOracle.connect({ url: s.url, apiKey: KEY, budget: 5 });
    const afterConnect = s.stats().requests;
    await assert.rejects(o.query({ ...set, n: 6, images: set.images.subarray(0, 6 * 192) }), QueryBudgetExceeded);
    assert.equal(s.stats().requests, afterConnect, 'nothing was sent');
    const bad = await HttpOracle.connect({ url: s.url, apiKey: 'sk-wrong', maxRetries: 5 });
    await assert.rejects(bad.query({ ...set, n: 1, images: set.images.subarray(0, 192) }), /answered 403 invalid_api_key/);
    assert.equal(s.stats().byStatus['403'], 1, 'one attempt, no retries');
  });
});
