import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as yazl from 'yazl';
import { decodeInto } from '../src/data/decode';
import { fastJpegEligible, scanJpeg } from '../src/data/jpegFast';
import { loadNpd, LoadSummary } from '../src/data/npd';
import { resampleRgb } from '../src/data/resample';

const quiet = { log: () => undefined, onProgress: () => undefined };

/** A deterministic colourful image, w x h x 3. */
function pattern(w: number, h: number, seed: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const o = (y * w + x) * 3;
    b[o] = (x * 4 + seed * 17) & 255;
    b[o + 1] = (y * 5 + seed * 29) & 255;
    b[o + 2] = ((x + y) * 3 + seed * 7) & 255;
  }
  return b;
}

/** The mixed bag every source test uses: 4 decodable images, 5 files that must be skipped, 2 clutter files. */
async function fixtureFiles(): Promise<Record<string, Buffer>> {
  const raw = (w: number, h: number, seed: number) => sharp(pattern(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
  const good = await raw(48, 40, 1).jpeg({ quality: 90 }).toBuffer();
  // A transparent left half: flattened on black by default.
  const rgba = Buffer.alloc(16 * 16 * 4, 0);
  for (let y = 0; y < 16; y++) for (let x = 8; x < 16; x++) rgba.set([200, 10, 20, 255], (y * 16 + x) * 4);
  return {
    'a/good.jpg': good,
    'a/gray.jpeg': await raw(64, 64, 2).grayscale().jpeg().toBuffer(),
    'b/alpha.png': await sharp(rgba, { raw: { width: 16, height: 16, channels: 4 } }).png().toBuffer(),
    'b/cmyk.jpg': await raw(40, 40, 3).toColourspace('cmyk').jpeg().toBuffer(),
    'c/truncated.jpg': good.subarray(0, Math.floor(good.length / 2)),
    'c/empty.jpg': Buffer.alloc(0),
    'c/fake.png': Buffer.from('this is not a png at all'),
    'c/huge.png': await sharp({ create: { width: 2000, height: 1500, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer(),
    'c/notes.txt': Buffer.from('labels are not NPD images'),
    '.DS_Store': Buffer.from('junk'),
    '__MACOSX/a/._good.jpg': Buffer.from('junk'),
  };
}

const EXPECT_IDS = ['a/good.jpg', 'a/gray.jpeg', 'b/alpha.png', 'b/cmyk.jpg'];
const EXPECT_REASONS = {
  'corrupt or truncated image': 1,
  'empty file': 1,
  'not an image or unsupported format': 1,
  'too many pixels (decompression bomb guard)': 1,
  'not an image file name': 1,
};

async function writeZip(file: string, files: Record<string, Buffer>): Promise<void> {
  const zip = new yazl.ZipFile();
  let k = 0;
  for (const [name, data] of Object.entries(files)) zip.addBuffer(data, name, { compress: k++ % 2 === 0 }); // stored and deflated entries
  zip.end();
  await new Promise<void>((resolve, reject) => zip.outputStream.pipe(fs.createWriteStream(file)).on('close', () => resolve()).on('error', reject));
}

function checkSummary(s: LoadSummary): void {
  assert.equal(s.decoded, 4);
  assert.equal(s.skipped, 5);
  assert.equal(s.total, 9);
  assert.equal(s.available, 8);
  assert.deepEqual(s.skippedReasons, EXPECT_REASONS);
  assert.ok(s.examplesSkipped.some((e) => /^c\/truncated\.jpg: corrupt or truncated image/.test(e)), s.examplesSkipped.join('\n'));
}

describe('NPD sources: decode, skip, cache', function () {
  this.timeout(30_000);
  let dir: string;
  let files: Record<string, Buffer>;
  const opts = (cache: string) => ({ ...quiet, size: 8, maxPixels: 1_000_000, cacheDir: path.join(dir, cache) });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npd-test-'));
    files = await fixtureFiles();
    await writeZip(path.join(dir, 'mixed.zip'), files);
    for (const [name, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, 'folder', name)), { recursive: true });
      fs.writeFileSync(path.join(dir, 'folder', name), data);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('zip (read in place): decodes good/grey/alpha/CMYK, skips corrupt, empty, fake, bomb and non-image names', async () => {
    const set = await loadNpd({ kind: 'zip', path: path.join(dir, 'mixed.zip') }, opts('c1'));
    checkSummary(set.summary);
    assert.deepEqual(set.ids, EXPECT_IDS);
    assert.equal(set.images.length, 4 * 8 * 8 * 3);
    assert.equal(set.height, 8);
    assert.match(set.source, /^zip .*mixed\.zip$/);
    assert.equal(fs.readdirSync(dir).filter((f) => f !== 'mixed.zip' && f !== 'folder' && f !== 'c1').length, 0, 'nothing extracted to disk');
    // Grey JPEG: R = G = B everywhere.
    const grey = set.images.subarray(8 * 8 * 3, 2 * 8 * 8 * 3);
    for (let p = 0; p < grey.length; p += 3) assert.ok(grey[p] === grey[p + 1] && grey[p] === grey[p + 2]);
    // Alpha PNG: transparent left half on black, opaque right half keeps its colour.
    const alpha = set.images.subarray(2 * 192, 3 * 192);
    assert.deepEqual(Array.from(alpha.subarray(0, 3)), [0, 0, 0]);
    assert.deepEqual(Array.from(alpha.subarray(7 * 3, 8 * 3)), [200, 10, 20]);
  });

  it('folder source gives the same images, with relative paths as ids', async () => {
    const z = await loadNpd({ kind: 'zip', path: path.join(dir, 'mixed.zip') }, opts('c1'));
    const f = await loadNpd({ kind: 'folder', path: path.join(dir, 'folder') }, opts('c2'));
    checkSummary(f.summary);
    assert.deepEqual(f.ids, EXPECT_IDS);
    assert.ok(Buffer.from(f.images).equals(Buffer.from(z.images)));
  });

  it('background: white is a different cache entry and flattens transparency on white', async () => {
    const set = await loadNpd({ kind: 'folder', path: path.join(dir, 'folder') }, { ...opts('c2'), background: 'white' });
    assert.equal(set.summary.fromCache, false);
    assert.deepEqual(Array.from(set.images.subarray(2 * 192, 2 * 192 + 3)), [255, 255, 255]);
  });

  it('second load comes from the cache, identical; a truncated cache is detected and rebuilt', async () => {
    const src = { kind: 'zip' as const, path: path.join(dir, 'mixed.zip') };
    const first = await loadNpd(src, opts('c3'));
    assert.equal(first.summary.fromCache, false);
    const second = await loadNpd(src, opts('c3'));
    assert.equal(second.summary.fromCache, true);
    checkSummary(second.summary);
    assert.deepEqual(second.ids, first.ids);
    assert.ok(Buffer.from(second.images).equals(Buffer.from(first.images)));
    const file = second.summary.cacheFile;
    fs.truncateSync(file, fs.statSync(file).size - 10);
    const lines: string[] = [];
    const third = await loadNpd(src, { ...opts('c3'), log: (l: string) => lines.push(l) });
    assert.equal(third.summary.fromCache, false);
    assert.match(lines.join('\n'), /image cache .*\.u8: expected \d+ bytes, found \d+ \(truncated\?\); rebuilding it/);
    assert.ok(Buffer.from(third.images).equals(Buffer.from(first.images)));
    // A flipped pixel byte is caught by the checksum.
    const buf = fs.readFileSync(file);
    buf[buf.length - 1] ^= 0xff;
    fs.writeFileSync(file, buf);
    lines.length = 0;
    await loadNpd(src, { ...opts('c3'), log: (l: string) => lines.push(l) });
    assert.match(lines.join('\n'), /pixel checksum mismatch/);
    assert.equal((await loadNpd(src, opts('c3'))).summary.fromCache, true);
  });

  it('a changed source file invalidates the cache', async () => {
    const folder = path.join(dir, 'folder2');
    fs.cpSync(path.join(dir, 'folder'), folder, { recursive: true });
    const a = await loadNpd({ kind: 'folder', path: folder }, opts('c4'));
    fs.writeFileSync(path.join(folder, 'a', 'extra.png'), files['b/alpha.png']);
    const b = await loadNpd({ kind: 'folder', path: folder }, opts('c4'));
    assert.equal(b.summary.fromCache, false);
    assert.equal(b.n, a.n + 1);
  });

  it('maxImages: a seeded subset of decodable images, the same whether decoded directly or cut from a full cache', async () => {
    const src = { kind: 'zip' as const, path: path.join(dir, 'mixed.zip') };
    const direct = await loadNpd(src, { ...opts('c5'), maxImages: 3, seed: 11 });
    assert.equal(direct.n, 3);
    assert.equal(direct.summary.fromCache, false);
    const again = await loadNpd(src, { ...opts('c5'), maxImages: 3, seed: 11 });
    assert.equal(again.summary.fromCache, true);
    assert.deepEqual(again.ids, direct.ids);
    await loadNpd(src, opts('c6')); // full cache
    const cut = await loadNpd(src, { ...opts('c6'), maxImages: 3, seed: 11 });
    assert.equal(cut.summary.fromCache, true);
    assert.deepEqual(cut.ids, direct.ids);
    assert.ok(Buffer.from(cut.images).equals(Buffer.from(direct.images)));
    const ids = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) (await loadNpd(src, { ...opts('c6'), maxImages: 2, seed })).ids!.forEach((i) => ids.add(i));
    assert.ok(ids.size >= 3, `seeds should draw different subsets, drew ${[...ids]}`);
  });

  it('bad arguments name the field and what was expected', async () => {
    await assert.rejects(loadNpd({ kind: 'imagenet' } as never, quiet), /kind must be one of folder, zip, tiny-imagenet, tiny-imagenet-rest20k, coco-train2014, coco-val2017, got "imagenet"/);
    await assert.rejects(loadNpd({ kind: 'zip' } as never, quiet), /field 'path' must be a non-empty string/);
    await assert.rejects(loadNpd({ kind: 'zip', path: path.join(dir, 'nope.zip') }, opts('c7')), /nope\.zip does not exist/);
    await assert.rejects(loadNpd({ kind: 'folder', path: path.join(dir, 'mixed.zip') }, opts('c7')), /is not a directory/);
    await assert.rejects(loadNpd({ kind: 'folder', path: dir }, { ...opts('c7'), maxImages: 0 }), /maxImages must be a positive integer, got 0/);
    await assert.rejects(loadNpd({ kind: 'tiny-imagenet' }, { ...opts('c7'), mirrorDir: dir, dataDir: dir, offline: true }), /Tiny ImageNet could not be obtained[\s\S]*offline/);
  });
});

describe('decoding details', () => {
  it('area resampling: a 2x shrink is the exact 2x2 mean; a same-size resample is the identity', () => {
    const src = pattern(8, 6, 5);
    const out = new Uint8Array(4 * 3 * 3);
    resampleRgb(src, 8, 6, 3, 4, 3, out);
    for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) {
      const at = (yy: number, xx: number) => src[(yy * 8 + xx) * 3 + c];
      const mean = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
      assert.equal(out[(y * 4 + x) * 3 + c], Math.floor(mean + 0.5));
    }
    const same = new Uint8Array(src.length);
    resampleRgb(src, 8, 6, 3, 8, 6, same);
    assert.ok(Buffer.from(same).equals(src));
  });

  it('enlarging interpolates linearly between pixel centres and keeps a flat image flat', () => {
    const src = Buffer.from([0, 0, 0, 200, 100, 50]); // 2x1
    const out = new Uint8Array(4 * 1 * 3);
    resampleRgb(src, 2, 1, 3, 4, 1, out);
    assert.deepEqual(Array.from(out.subarray(0, 3)), [0, 0, 0]);
    assert.deepEqual(Array.from(out.subarray(3, 6)), [50, 25, 13]);
    assert.deepEqual(Array.from(out.subarray(9, 12)), [200, 100, 50]);
  });

  it('the wasm JPEG path gives the same pixels as sharp decoding followed by the same resampling', async () => {
    for (const [w, h, q] of [[64, 64, 75], [37, 53, 95], [120, 80, 50]]) {
      const jpg = await sharp(pattern(w, h, w), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: q }).toBuffer();
      assert.ok(fastJpegEligible(scanJpeg(jpg), 1e6));
      const fast = new Uint8Array(16 * 16 * 3);
      assert.deepEqual(await decodeInto(jpg, fast, 0, { size: 16 }), { ok: true });
      const { data, info } = await sharp(jpg).raw().toBuffer({ resolveWithObject: true });
      const ref = new Uint8Array(16 * 16 * 3);
      resampleRgb(data, info.width, info.height, info.channels, 16, 16, ref);
      assert.ok(Buffer.from(fast).equals(Buffer.from(ref)), `${w}x${h} q${q}`);
    }
  });

  it('JPEG header scan: a cut-off file is not complete; a huge frame is refused before decoding', async () => {
    const jpg = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: '#123456' } }).jpeg().toBuffer();
    const h = scanJpeg(jpg);
    assert.deepEqual([h?.width, h?.height, h?.components, h?.complete], [3000, 2000, 3, true]);
    assert.equal(scanJpeg(jpg.subarray(0, jpg.length - 100))?.complete, false);
    assert.equal(scanJpeg(Buffer.from('not a jpeg')), null);
    const r = await decodeInto(jpg, new Uint8Array(3 * 32 * 32), 0, { maxPixels: 1_000_000 });
    assert.deepEqual(r, { ok: false, reason: 'too many pixels (decompression bomb guard)', detail: '3000x2000 > 1000000 pixels' });
  });
});
