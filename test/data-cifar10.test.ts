import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { CIFAR10_FILES, convertNpmStrips, ensureCifar10, parseCifarBinaries } from '../src/data/cifar10';

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

  it('refuses a data folder whose files do not have the official md5s, naming the file', async () => {
    const data = path.join(dir, 'data');
    const bins = path.join(data, 'downloads', 'cifar-10-batches-bin');
    fs.mkdirSync(bins, { recursive: true });
    for (const f of Object.keys(CIFAR10_FILES)) fs.writeFileSync(path.join(bins, f), Buffer.alloc(3073 * 10000));
    await assert.rejects(ensureCifar10({ dataDir: data, offline: true, log: () => undefined }), /data_batch_1\.bin: md5 mismatch: expected 5dd7e06a14cb22eb9f671a540d1b7c25.*Delete/s);
  });
});
