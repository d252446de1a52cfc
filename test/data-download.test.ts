import { strict as assert } from 'assert';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { downloadFile } from '../src/data/download';

const PAYLOAD = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7 + (i >> 8)) & 255));
const MD5 = crypto.createHash('md5').update(PAYLOAD).digest('hex');

/** A file server on 127.0.0.1 that honours Range, and whose misbehaviour each test picks. */
interface Served { ranges: (string | undefined)[]; statuses: number[]; mode: 'ok' | 'cut-first' | 'no-range' | 'wrong-bytes'; requests: number }

describe('downloadFile (local HTTP server)', function () {
  this.timeout(20_000);
  let server: http.Server;
  let base: string;
  let dir: string;
  const served: Served = { ranges: [], statuses: [], mode: 'ok', requests: 0 };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'download-test-'));
    server = http.createServer((req, res) => {
      served.requests++;
      served.ranges.push(req.headers.range);
      const body = served.mode === 'wrong-bytes' ? Buffer.alloc(PAYLOAD.length, 1) : PAYLOAD;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (req.url === '/missing') return void res.writeHead(404).end();
      if (req.url === '/moved') {
        res.writeHead(302, { Location: '/file.bin' }).end();
        return;
      }
      if (m && served.mode !== 'no-range') {
        const from = Number(m[1]);
        if (from >= body.length) return void res.writeHead(416).end();
        served.statuses.push(206);
        res.writeHead(206, { 'Content-Length': body.length - from, 'Content-Range': `bytes ${from}-${body.length - 1}/${body.length}` });
        res.end(body.subarray(from));
        return;
      }
      served.statuses.push(200);
      res.writeHead(200, { 'Content-Length': body.length });
      if (served.mode === 'cut-first' && served.requests === 1) {
        // Half the file, then the connection drops: an interrupted transfer.
        res.write(body.subarray(0, 80_000), () => setTimeout(() => res.socket?.destroy(), 50));
        return;
      }
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    served.ranges = [];
    served.statuses = [];
    served.requests = 0;
    served.mode = 'ok';
  });

  it('downloads through a redirect, checks md5 and size, leaves no .part', async () => {
    const dest = path.join(dir, 'a.bin');
    const seen: number[] = [];
    await downloadFile(`${base}/moved`, dest, { md5: MD5, bytes: PAYLOAD.length, onProgress: (d) => seen.push(d) });
    assert.ok(fs.readFileSync(dest).equals(PAYLOAD));
    assert.ok(!fs.existsSync(dest + '.part'));
    assert.equal(seen[seen.length - 1], PAYLOAD.length);
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    served.mode = 'cut-first';
    const dest = path.join(dir, 'b.bin');
    await assert.rejects(downloadFile(`${base}/file.bin`, dest, { md5: MD5 }));
    const partial = fs.statSync(dest + '.part').size;
    assert.ok(partial > 0 && partial < PAYLOAD.length, `partial file of ${partial} bytes`);
    assert.ok(!fs.existsSync(dest), 'a half file must never get the final name');
    const seen: Array<[number, number]> = [];
    await downloadFile(`${base}/file.bin`, dest, { md5: MD5, onProgress: (d, t) => seen.push([d, t]) });
    assert.equal(served.ranges[1], `bytes=${partial}-`);
    // The first report is where the resume starts (so the shown rate counts only new bytes).
    assert.deepEqual(seen[0], [partial, PAYLOAD.length]);
    assert.deepEqual(served.statuses, [200, 206]);
    assert.ok(fs.readFileSync(dest).equals(PAYLOAD));
  });

  it('starts over when the server ignores Range (HTTP 200)', async () => {
    const dest = path.join(dir, 'c.bin');
    fs.writeFileSync(dest + '.part', PAYLOAD.subarray(0, 1000));
    served.mode = 'no-range';
    await downloadFile(`${base}/file.bin`, dest, { md5: MD5 });
    assert.equal(served.ranges[0], 'bytes=1000-');
    assert.ok(fs.readFileSync(dest).equals(PAYLOAD));
  });

  it('a checksum mismatch deletes the file, downloads once more, then fails naming the file and expected md5', async () => {
    served.mode = 'wrong-bytes';
    const dest = path.join(dir, 'd.bin');
    const lines: string[] = [];
    await assert.rejects(downloadFile(`${base}/file.bin`, dest, { md5: MD5, log: (l) => lines.push(l) }), new RegExp(`d\\.bin: md5 mismatch: expected ${MD5}.*after a fresh re-download`));
    assert.equal(served.requests, 2);
    assert.match(lines.join('\n'), /deleted, downloading again/);
    assert.ok(!fs.existsSync(dest) && !fs.existsSync(dest + '.part'));
  });

  it('an already complete file with the right md5 is not fetched again; a wrong one is replaced', async () => {
    const dest = path.join(dir, 'e.bin');
    fs.writeFileSync(dest, PAYLOAD);
    await downloadFile(`${base}/file.bin`, dest, { md5: MD5 });
    assert.equal(served.requests, 0);
    fs.writeFileSync(dest, Buffer.from('stale'));
    await downloadFile(`${base}/file.bin`, dest, { md5: MD5, log: () => undefined });
    assert.equal(served.requests, 1);
    assert.ok(fs.readFileSync(dest).equals(PAYLOAD));
  });

  it('an unreachable host fails fast with a clear message', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const t = Date.now();
    await assert.rejects(downloadFile(`http://127.0.0.1:${port}/x.bin`, path.join(dir, 'f.bin')), /cannot connect \(ECONNREFUSED\)/);
    assert.ok(Date.now() - t < 5000);
  });

  it('an HTTP error status is reported with the URL', async () => {
    await assert.rejects(downloadFile(`${base}/missing`, path.join(dir, 'g.bin'), { md5: MD5 }), new RegExp(`download ${base}/missing: HTTP 404`));
    assert.ok(!fs.existsSync(path.join(dir, 'g.bin')));
  });
});
