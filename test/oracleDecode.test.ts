import { strict as assert } from 'assert';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { decodeToRgb, encodePng, InvalidImage } from '../src/oracle/decode';

/** A deterministic 3-channel image with edges and gradients (not constant, so codecs have work). */
function pattern(h: number, w: number, seed: number): Uint8Array {
  const a = new Uint8Array(h * w * 3);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37 + seed * 101 + ((i / (3 * w)) | 0) * 11) & 255;
  return a;
}

async function viaSharp(file: Buffer, h: number, w: number): Promise<Uint8Array> {
  const { data } = await sharp(file).removeAlpha().toColourspace('srgb').resize(w, h, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

describe('oracle image codec (client PNG upload, server decode)', () => {
  it('round-trips the client PNG losslessly, with sharp reading the same pixels', async () => {
    const imgs = new Uint8Array([...pattern(32, 32, 1), ...pattern(32, 32, 2)]);
    const png = await encodePng(imgs, 1, 32, 32);
    assert.deepEqual(Array.from(png.subarray(1, 4)), [0x50, 0x4e, 0x47]);
    const back = await decodeToRgb(png, 32, 32);
    assert.deepEqual(back, imgs.subarray(32 * 32 * 3));
    assert.deepEqual(await viaSharp(png, 32, 32), back);
  });

  it('decodes RGBA PNGs like sharp (alpha dropped) and routes other PNG kinds and sizes through sharp', async () => {
    const rgba = Buffer.alloc(32 * 32 * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = (i * 13) & 255;
    const pngA = await sharp(rgba, { raw: { width: 32, height: 32, channels: 4 } }).png().toBuffer();
    assert.deepEqual(await decodeToRgb(pngA, 32, 32), await viaSharp(pngA, 32, 32));
    const gray = await sharp(Buffer.from(pattern(32, 32, 3).subarray(0, 1024)), { raw: { width: 32, height: 32, channels: 1 } }).png().toBuffer();
    const g = await decodeToRgb(gray, 32, 32);
    assert.equal(g.length, 32 * 32 * 3);
    assert.deepEqual(g, await viaSharp(gray, 32, 32));
    const big = await sharp(Buffer.from(pattern(64, 48, 4)), { raw: { width: 48, height: 64, channels: 3 } }).png().toBuffer();
    assert.deepEqual(await decodeToRgb(big, 32, 32), await viaSharp(big, 32, 32));
  });

  it('rejects a PNG whose header is fine but whose data is damaged, naming the codec', async () => {
    const png = Buffer.from(await encodePng(pattern(32, 32, 5), 0, 32, 32));
    const idat = png.indexOf('IDAT');
    for (let i = idat + 4; i < idat + 24 && i < png.length - 12; i++) png[i] ^= 0xff;
    await assert.rejects(decodeToRgb(png, 32, 32), (e: Error) => e instanceof InvalidImage && /not a decodable image \(PNG: /.test(e.message));
  });

  it('reads every PNG row filter and compressed data like pngjs; refuses a file cut short', async () => {
    const rgb = pattern(32, 32, 6);
    for (const filterType of [0, 1, 2, 3, 4, -1]) {
      for (const colorType of [2, 6] as const) {
        const data = colorType === 2 ? Buffer.from(rgb) : Buffer.from(Array.from({ length: 32 * 32 * 4 }, (_, i) => (i % 4 === 3 ? 200 : rgb[(i >> 2) * 3 + (i % 4)])));
        const png = PNG.sync.write({ width: 32, height: 32, data } as PNG, { colorType, inputColorType: colorType, inputHasAlpha: colorType === 6, filterType, deflateLevel: 6 });
        assert.deepEqual(await decodeToRgb(png, 32, 32), rgb, `filter ${filterType}, colour type ${colorType}`);
      }
    }
    const ours = await encodePng(rgb, 0, 32, 32);
    await assert.rejects(decodeToRgb(ours.subarray(0, ours.length - 20), 32, 32), /not a decodable image \(PNG: /);
  });
});
