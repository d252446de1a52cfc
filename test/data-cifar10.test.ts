import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { CIFAR10_FILES, convertNpmStrips, ensureCifar10, parseCifarBinaries, stripToRecords } from '../src/data/cifar10';
import { splitHeldOut } from '../src/data/split';

/** A CIFAR record whose pixels encode (record, plane, position) so a mix-up of planes shows. */
function record(label: number, seed: number): Buffer {
  const r = Buffer.alloc(3073);
  r[0] = label;
  for (let i = 0; i < 3072; i++) r[1 + i] = (seed * 31 + i * 7) & 255;
  return r;
}

describe('CIFAR-10 binary format', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cifar-test-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('parses records into NHWC RGB with labels and ids', () => {
    const file = path.join(dir, 'b.bin');
    fs.writeFileSync(file, Buffer.concat([record(3, 1), record(9, 2)]));
    const set = parseCifarBinaries([file], 'train');
    assert.equal(set.n, 2);
    assert.deepEqual(Array.from(set.labels!), [3, 9]);
    assert.deepEqual(set.ids, ['train/00000', 'train/00001']);
    const src = record(9, 2);
    // pixel (row 1, col 2) of image 1: R plane, G plane, B plane at offset 1*32+2
    const p = 34;
    const o = 3072 + p * 3;
    assert.deepEqual([set.images[o], set.images[o + 1], set.images[o + 2]], [src[1 + p], src[1 + 1024 + p], src[1 + 2048 + p]]);
  });

  it('names the file when its length is not a whole number of records', () => {
    const file = path.join(dir, 'short.bin');
    fs.writeFileSync(file, Buffer.alloc(3073 + 5));
    assert.throws(() => parseCifarBinaries([file], 'x'), /short\.bin has 3078 bytes, expected a multiple of 3073/);
  });

  it('rejects a label outside 0..9', () => {
    const file = path.join(dir, 'badlabel.bin');
    fs.writeFileSync(file, record(12, 1));
    assert.throws(() => parseCifarBinaries([file], 'x'), /badlabel\.bin record 0 has label 12/);
  });

  it('converts PNG strips (pixel i of row r = image r) to records, then checks official md5s', async () => {
    const pkg = path.join(dir, 'pkg');
    fs.mkdirSync(pkg);
    // Strips of the real size are needed for the format check; content is synthetic, so md5s must fail.
    const strip = Buffer.alloc(1024 * 10000 * 3, 7);
    for (const name of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
      await sharp(strip, { raw: { width: 1024, height: 10000, channels: 3 } }).png({ compressionLevel: 1 }).toFile(path.join(pkg, `${name}.png`));
    }
    fs.writeFileSync(path.join(pkg, 'train_lables.json'), JSON.stringify(new Array(50000).fill(1)));
    fs.writeFileSync(path.join(pkg, 'test_lables.json'), JSON.stringify(new Array(10000).fill(2)));
    await assert.rejects(convertNpmStrips(pkg, path.join(dir, 'out')), /data_batch_1\.bin: md5 mismatch: expected 5dd7e06a14cb22eb9f671a540d1b7c25/);
    assert.ok(!fs.existsSync(path.join(dir, 'out')), 'a failed conversion must not leave a target a later run trusts');
  });

  it('round trip: a PNG-strip row becomes a record whose parse gives back the same pixels', async () => {
    const n = 3;
    const rgb = new Uint8Array(n * 3072);
    for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 13 + (i >> 10)) & 255;
    // Through a real PNG, as the npm package stores it: lossless, so nothing may change.
    const png = await sharp(Buffer.from(rgb), { raw: { width: 1024, height: n, channels: 3 } }).png().toBuffer();
    const back = await sharp(png).raw().toBuffer();
    const file = path.join(dir, 'roundtrip.bin');
    fs.writeFileSync(file, stripToRecords(back, [4, 0, 9]));
    assert.equal(fs.statSync(file).size, n * 3073);
    const set = parseCifarBinaries([file], 'test');
    assert.deepEqual(Array.from(set.labels!), [4, 0, 9]);
    assert.deepEqual(Buffer.from(set.images), Buffer.from(rgb));
    assert.throws(() => stripToRecords(rgb, [1, 2]), /9216 bytes of pixels for 2 labels, expected 6144/);
  });

  it('moves aside a data folder whose files fail the official md5, names file and expected md5, then tries the other routes', async () => {
    const data = path.join(dir, 'data');
    const bins = path.join(data, 'downloads', 'cifar-10-batches-bin');
    fs.mkdirSync(bins, { recursive: true });
    for (const f of Object.keys(CIFAR10_FILES)) fs.writeFileSync(path.join(bins, f), Buffer.alloc(3073 * 10000));
    const lines: string[] = [];
    await assert.rejects(
      ensureCifar10({ dataDir: data, mirrorDir: path.join(dir, 'no-mirror'), offline: true, npm: false, log: (l) => lines.push(l) }),
      /could not be obtained[\s\S]*npm route .* disabled/,
    );
    assert.match(lines.join('\n'), /data_batch_1\.bin: md5 mismatch: expected 5dd7e06a14cb22eb9f671a540d1b7c25.*moved to .*cifar-10-batches-bin\.bad-/);
    assert.ok(!fs.existsSync(bins), 'the bad copy must not stay where it would be trusted');
    const aside = fs.readdirSync(path.dirname(bins)).filter((d) => d.startsWith('cifar-10-batches-bin.bad-'));
    assert.equal(aside.length, 1);
  });
});

describe('splitHeldOut', () => {
  const set = {
    images: Uint8Array.from({ length: 10 * 12 }, (_, i) => i), n: 10, height: 2, width: 2,
    labels: Uint8Array.from({ length: 10 }, (_, i) => i), ids: Array.from({ length: 10 }, (_, i) => `train/${i}`),
  };

  it('splits into disjoint parts that together are the set, seeded and in source order', () => {
    const a = splitHeldOut(set, 3, 7);
    const b = splitHeldOut(set, 3, 7);
    const c = splitHeldOut(set, 3, 9);
    assert.equal(a.heldOut.n, 3);
    assert.equal(a.train.n, 7);
    assert.deepEqual(a.heldOut.ids, b.heldOut.ids);
    assert.notDeepEqual(a.heldOut.ids, c.heldOut.ids);
    const all = [...a.train.ids!, ...a.heldOut.ids!].sort();
    assert.deepEqual(all, [...set.ids].sort());
    const heldLabels = Array.from(a.heldOut.labels!);
    assert.deepEqual(heldLabels, [...heldLabels].sort((x, y) => x - y));
    // Pixels follow their image: image i holds bytes 12i..12i+11.
    assert.equal(a.heldOut.images[0], heldLabels[0] * 12);
  });

  it('rejects nHeld outside 0..n', () => {
    assert.throws(() => splitHeldOut(set, 11, 0), /nHeld must be an integer 0\.\.10, got 11/);
  });
});
