import { strict as assert } from 'assert';
import sharp from 'sharp';
import { fitCaption, imageGridPng, sampleIndices, showImageGrid } from '../src/display/imageGrid';
import { NotebookSink, RichDisplay, setNotebookSink } from '../src/display/notebook';
import { ImageSet } from '../src/types';

/** n tiny images, each a flat colour derived from its index, so pixels can be checked after the grid. */
function coloured(n: number, h = 4, w = 4, labels = true): ImageSet {
  const images = new Uint8Array(n * h * w * 3);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < h * w; p++) images.set([(i * 40) % 256, 255 - ((i * 40) % 256), 128], (i * h * w + p) * 3);
  }
  return { images, n, height: h, width: w, labels: labels ? Uint8Array.from({ length: n }, (_, i) => i % 10) : undefined };
}

describe('imageGrid', () => {
  it('decodes to the expected size and keeps each image as a nearest-neighbour block', async () => {
    const set = coloured(5);
    const png = await imageGridPng(set, { columns: 3, scale: 3, gap: 2, fontSize: 10 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const captionH = Math.ceil(10 * 1.5);
    assert.equal(info.width, 3 * 12 + 4 * 2);
    assert.equal(info.height, 2 * (12 + captionH) + 3 * 2);
    // Image 4 sits in row 1, column 1; all 12x12 pixels of its block hold its colour.
    const x0 = 2 + 1 * (12 + 2);
    const y0 = 2 + 1 * (12 + captionH + 2);
    for (const [dx, dy] of [[0, 0], [11, 11], [5, 7]]) {
      const o = ((y0 + dy) * info.width + x0 + dx) * info.channels;
      assert.deepEqual([data[o], data[o + 1], data[o + 2]], [160, 95, 128]);
    }
  });

  it('draws captions (dark pixels appear under the images) and survives odd class names', async () => {
    const set = coloured(4);
    const odd = ['<b>&"\'', '', 'a\u0001b\u0007', 'ünïcødé 🐱 very long caption that cannot fit in a 32 px cell'];
    const png = await imageGridPng(set, { captions: odd, scale: 8, gap: 0, fontSize: 12 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 4 * 32);
    let dark = 0;
    for (let y = 32; y < info.height; y++) {
      for (let x = 0; x < info.width; x++) {
        const o = (y * info.width + x) * info.channels;
        if (data[o] < 128) dark++;
      }
    }
    assert.ok(dark > 20, `caption strip should contain text pixels, found ${dark}`);
    const plain = await imageGridPng(coloured(3, 4, 4, false), {});
    assert.equal((await sharp(plain).metadata()).height, 4 * 3 + 2 * 4, 'no caption strip without captions');
  });

  it('defaults to class names of the stolen labels, and custom class names', async () => {
    const set = coloured(2);
    const a = await imageGridPng(set, { classNames: ['x', 'y'] });
    const b = await imageGridPng(set, { classNames: ['xxxxxxxx', 'yyyyyyyy'] });
    assert.notDeepEqual(a, b, 'captions come from classNames[label]');
  });

  it('clear errors for bad input', async () => {
    const set = coloured(2);
    await assert.rejects(imageGridPng({ ...set, images: new Uint8Array(5) }), /set\.images has 5 bytes, expected n\*height\*width\*3 = 96/);
    await assert.rejects(imageGridPng(set, { indices: [0, 2] }), /indices\[1\] = 2 is outside 0\.\.1/);
    await assert.rejects(imageGridPng(set, { captions: ['one'] }), /1 captions for 2 images/);
    await assert.rejects(imageGridPng(set, { scale: 1.5 }), /scale must be an integer/);
    await assert.rejects(imageGridPng({ ...set, n: 0, images: new Uint8Array(0) }), /no images to show/);
  });

  describe('showImageGrid', () => {
    afterEach(() => setNotebookSink(undefined));

    it('shows one PNG and returns nothing, so a notebook cell ending with it prints no <Buffer ...>', async () => {
      const shown: Uint8Array[] = [];
      const d: RichDisplay = { html: () => assert.fail('html'), markdown: () => assert.fail('markdown'), png: (b) => shown.push(b), text: () => assert.fail('text') };
      const sink: NotebookSink = { display: d, newDisplay: () => d };
      setNotebookSink(sink);
      const set = coloured(3);
      const ret: unknown = await showImageGrid(set, { columns: 3 });
      // tslab prints a cell's last value unless it is null or undefined.
      assert.equal(ret, undefined);
      assert.equal(shown.length, 1);
      assert.deepEqual(Buffer.from(shown[0]), await imageGridPng(set, { columns: 3 }));
    });

    it('outside a notebook prints a size note only', async () => {
      setNotebookSink(null);
      const lines: string[] = [];
      const orig = console.log;
      console.log = (...a: unknown[]) => lines.push(a.join(' '));
      try {
        assert.equal(await showImageGrid(coloured(2)), undefined);
      } finally {
        console.log = orig;
      }
      assert.equal(lines.length, 1);
      assert.match(lines[0], /^\[png \d+ bytes\]$/);
    });
  });

  describe('sampleIndices', () => {
    it('k distinct indices in range, the same for the same seed, different for another seed', () => {
      const a = sampleIndices(1000, 32, 1);
      assert.equal(a.length, 32);
      assert.equal(new Set(a).size, 32);
      assert.ok(a.every((i) => Number.isInteger(i) && i >= 0 && i < 1000));
      assert.deepEqual(sampleIndices(1000, 32, 1), a);
      assert.notDeepEqual(sampleIndices(1000, 32, 2), a);
      assert.notDeepEqual([...a].sort((x, y) => x - y), Array.from({ length: 32 }, (_, i) => i), 'not the first images');
      assert.deepEqual(sampleIndices(1000, 32, 'run-a'), sampleIndices(1000, 32, 'run-a'));
    });

    it('k >= n gives a permutation of all n; empty cases; bad arguments', () => {
      assert.deepEqual([...sampleIndices(5, 9, 3)].sort(), [0, 1, 2, 3, 4]);
      assert.deepEqual(sampleIndices(0, 4), []);
      assert.deepEqual(sampleIndices(4, 0), []);
      assert.throws(() => sampleIndices(-1, 2), /n must be an integer >= 0, got -1/);
      assert.throws(() => sampleIndices(10, 1.5), /k must be an integer >= 0, got 1\.5/);
    });

    it('every index is about equally likely (no bias towards the start or the end)', () => {
      const n = 10;
      const counts = new Array<number>(n).fill(0);
      for (let seed = 0; seed < 3000; seed++) for (const i of sampleIndices(n, 3, seed)) counts[i]++;
      // Expected 900 each; binomial sd ~26, so +-150 fails only on a real bias.
      counts.forEach((c, i) => assert.ok(c > 750 && c < 1050, `index ${i} drawn ${c} times, expected ~900`));
    });

    it('gives a grid its indices, with one caption per sampled image', async () => {
      const set = coloured(20);
      const idx = sampleIndices(set.n, 6, 7);
      const png = await imageGridPng(set, { indices: idx, captions: idx.map((i) => `#${i}`), columns: 3 });
      assert.equal((await sharp(png).metadata()).width, 3 * 12 + 4 * 4);
    });
  });

  it('fitCaption shortens by code points with an ellipsis', () => {
    assert.equal(fitCaption('cat', 96, 11), 'cat');
    const cut = fitCaption('🐱'.repeat(50), 33, 11);
    assert.equal(Array.from(cut).length, 5);
    assert.ok(cut.endsWith('…'));
    assert.equal(fitCaption('  two\n lines ', 200, 10), 'two lines');
  });
});
