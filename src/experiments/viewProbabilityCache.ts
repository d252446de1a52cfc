import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { EnsembleOptions, TestTimeView } from '../copycatEnsemble';
import { sha256, writeFileAtomic } from '../io';
import type { Run } from '../run';

/** Run-relative folder of the cached probabilities; derived data, so the run archive leaves it out. */
export { VIEW_CACHE_DIR } from '../run/layout';
import { VIEW_CACHE_DIR } from '../run/layout';

/** A saved model's identity: the hash of every file in its directory (model.json and the weights). */
export function modelFingerprint(modelDir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of fs.readdirSync(modelDir).filter((f) => fs.statSync(path.join(modelDir, f)).isFile()).sort()) {
    h.update(f).update('\0').update(fs.readFileSync(path.join(modelDir, f)));
  }
  return h.digest('hex');
}

export interface ViewProbabilityCache extends NonNullable<EnsembleOptions['viewCache']> {
  /** How many views were read back / predicted and stored since the cache was made. */
  hits: number;
  misses: number;
}

/**
 * Each member's class probabilities on each test-time view, stored as raw float32 files under the run
 * (400 KB per model and view on the 10k test set). Predicting the test set costs about half a minute
 * per view of a wide copy on 2 CPU cores, and researchers rescore the same copies in many combinations;
 * the key holds everything the numbers depend on (the weights' bytes, the test images, the view and the
 * backend with its arithmetic), so a retrained copy or another machine's arithmetic is never served stale
 * numbers. A file of the wrong size is ignored and recomputed.
 */
export function viewProbabilityCache(
  run: Pick<Run, 'path'>,
  modelDirs: string[],
  images: Uint8Array,
  expectedLength: (index: number) => number,
  arithmetic: string,
  log: (s: string) => void = () => {},
): ViewProbabilityCache {
  const models = modelDirs.map(modelFingerprint);
  const test = sha256(images);
  const file = (index: number, v: TestTimeView): string => {
    const key = sha256(JSON.stringify({ model: models[index], test, arithmetic, view: [v.dy, v.dx, v.flip] }));
    return run.path(...VIEW_CACHE_DIR.split('/'), `${key.slice(0, 40)}.f32`);
  };
  const cache: ViewProbabilityCache = {
    hits: 0,
    misses: 0,
    get(index, v) {
      const f = file(index, v);
      if (!fs.existsSync(f)) return undefined;
      const buf = fs.readFileSync(f);
      if (buf.length !== 4 * expectedLength(index)) {
        log(`view-probability cache: ${f} holds ${buf.length} bytes, expected ${4 * expectedLength(index)}; predicting again`);
        return undefined;
      }
      cache.hits++;
      // Copied into a fresh buffer: readFileSync may hand back a slice of a pool at any byte offset.
      return new Float32Array(new Uint8Array(buf).buffer);
    },
    put(index, v, probs) {
      cache.misses++;
      const f = file(index, v);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      writeFileAtomic(f, new Uint8Array(probs.buffer, probs.byteOffset, probs.byteLength));
    },
  };
  return cache;
}
