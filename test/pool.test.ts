import { strict as assert } from 'assert';
import { unqueriedPool } from '../src/data/pool';
import { imageHashes } from '../src/oracle/identity';
import { ImageSet } from '../src/types';
import { randomImages } from './oracleFixtures';

/** Images with ids, from a seed (distinct seeds give distinct contents). */
function images(n: number, seed: string): ImageSet {
  const s = randomImages(n, 4, seed);
  return { ...s, ids: Array.from({ length: n }, (_, i) => `${seed}/${i}`) };
}
const hashes = (s: ImageSet): string[] => imageHashes(s.images, s.n, s.height * s.width * 3);

describe('the unqueried pool (src/data/pool.ts)', () => {
  const source = images(30, 'queried-source');
  const extra = images(20, 'extra');
  const paid = new Set(hashes(source).slice(0, 10));

  it('never holds an image that was paid for, and keeps the held-out slice out of training', () => {
    const heldOut: ImageSet = { ...extra, n: 5, images: extra.images.slice(0, 5 * 48), ids: extra.ids!.slice(0, 5) };
    const p = unqueriedPool({ heldOut, extra: [extra], queriedSource: source, queriedHashes: paid, images: null });
    const train = new Set(hashes(p.train));
    for (const h of paid) assert.ok(!train.has(h), 'a paid image entered the pool');
    for (const h of hashes(p.heldOut)) assert.ok(!train.has(h), 'a held-out image is also a training image');
    assert.equal(p.heldOut.n, 5);
    assert.equal(p.train.n, 15 + 20);
    assert.deepEqual(p.summary, { trainImages: 35, heldOutImages: 5, fromExtraSources: 15, fromQueriedSource: 20, excludedAsQueried: 10, duplicates: 0 });
    assert.equal(p.train.labels, undefined, 'the pool carries no labels');
  });

  it('takes the extra sources first up to the cap, and drops duplicates by content whatever their ids', () => {
    const heldOut: ImageSet = { ...extra, n: 2, images: extra.images.slice(0, 2 * 48), ids: ['h0', 'h1'] };
    const twin: ImageSet = { ...source, ids: source.ids!.map((id) => `elsewhere/${id}`) };
    const p = unqueriedPool({ heldOut, extra: [extra, twin], queriedSource: source, queriedHashes: paid, images: 25 });
    assert.equal(p.train.n, 25);
    assert.equal(p.summary.fromExtraSources, 25);
    assert.equal(p.summary.fromQueriedSource, 0);
    assert.ok(p.train.ids!.slice(0, 18).every((id) => id.startsWith('extra/')), 'extra source first');
    const all = unqueriedPool({ heldOut, extra: [extra, twin], queriedSource: source, queriedHashes: paid, images: null });
    assert.equal(all.summary.duplicates, 20, 'the source twice (the held-out pair in extra is skipped, not a duplicate)');
    assert.equal(all.train.n, 18 + 20);
  });

  it('a paid image in the held-out slice is dropped from it', () => {
    const heldOut: ImageSet = { ...source, n: 12, images: source.images.slice(0, 12 * 48), ids: source.ids!.slice(0, 12) };
    const p = unqueriedPool({ heldOut, extra: [], queriedHashes: paid, images: null });
    assert.equal(p.heldOut.n, 2);
    assert.equal(p.train.n, 0);
  });
});
