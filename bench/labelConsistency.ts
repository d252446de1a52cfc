/**
 * How often the oracle gives an augmented image the label it gave the original: the label noise that
 * crop/flip augmentation of stolen images introduces. A CIFAR-10 image keeps its class under a 4-pixel
 * shift, but the oracle's answer for an out-of-distribution image may not: if it changes, training on
 * augmented NPD images teaches the copycat labels the oracle never gave. Prints one JSON line.
 *
 *   npm run bench:consistency -- --model-dir data/runs/full-1/oracle/model [--n 10000] [--pad 4] [--cutout 8]
 *
 * Uses the real Tiny ImageNet NPD images (mirror in $COPYCAT_MIRROR_DIR or a download) and, for
 * comparison, the CIFAR-10 test images. Seeded; inference only (no queries are counted or cached).
 */
import { parseArgs } from 'util';
import seedrandom from 'seedrandom';
import { formatBackendReport, initBackend } from '../src/platform/backend';
import { loadCifar10 } from '../src/data/cifar10';
import { loadNpd } from '../src/data/npd';
import { LocalOracle } from '../src/oracle/local';
import { augmentBatch, type AugmentationConfig } from '../src/train/augment';
import type { ImageSet } from '../src/types';
import { positiveInt } from './args';

async function labels(oracle: LocalOracle, set: ImageSet): Promise<Int32Array> {
  return Int32Array.from((await oracle.query(set)).map((a) => a.label));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'model-dir': { type: 'string' },
      n: { type: 'string', default: '10000' },
      pad: { type: 'string', default: '4' },
      cutout: { type: 'string', default: '8' },
    },
  });
  if (!values['model-dir']) throw new Error('--model-dir <dir with model.json> is required');
  const n = positiveInt(values.n, '--n');
  const pad = positiveInt(values.pad, '--pad');
  const cutout = positiveInt(values.cutout, '--cutout');
  console.error(formatBackendReport(await initBackend({ quiet: true })));
  const oracle = await LocalOracle.fromDir(values['model-dir']);
  const { height: h, width: w } = oracle.info.input;
  const npd = await loadNpd({ kind: 'tiny-imagenet' }, { size: h, maxImages: n, seed: 1, log: () => {} });
  const test = (await loadCifar10()).test;
  const sets: Record<string, ImageSet> = {
    npd: { images: npd.images, n: npd.n, height: h, width: w },
    cifar10Test: { images: test.images.subarray(0, Math.min(n, test.n) * h * w * 3), n: Math.min(n, test.n), height: h, width: w },
  };
  const variants: Record<string, AugmentationConfig> = {
    flip: { crop: false, flip: true },
    [`crop${pad}`]: { crop: true, flip: false, pad },
    [`crop${pad}+flip`]: { crop: true, flip: true, pad },
    [`cutout${cutout}`]: { crop: false, flip: false, cutout },
  };
  const result: Record<string, Record<string, number>> = {};
  for (const [name, set] of Object.entries(sets)) {
    const base = await labels(oracle, set);
    const idx = Array.from({ length: set.n }, (_, i) => i);
    result[name] = {};
    for (const [variant, cfg] of Object.entries(variants)) {
      // flip alone always flips (otherwise half the images would be unchanged and the figure halved).
      const rng = variant === 'flip' ? () => 0 : seedrandom(`consistency/${variant}`);
      const aug = await labels(oracle, { ...set, images: augmentBatch(set, idx, cfg, rng) });
      let same = 0;
      for (let i = 0; i < set.n; i++) if (aug[i] === base[i]) same++;
      result[name][variant] = +(same / set.n).toFixed(4);
    }
  }
  oracle.dispose();
  console.log(JSON.stringify({ bench: 'label-consistency', model: values['model-dir'], n, sameLabelFraction: result }));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
