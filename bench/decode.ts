/**
 * Decode + resize throughput of the NPD loader: cold (no cache) then warm (from the uint8 cache).
 * Prints one JSON line. Source: $BENCH_ZIP or the Tiny ImageNet mirror zip in $COPYCAT_MIRROR_DIR.
 *   COPYCAT_MIRROR_DIR=/work/shared/datasets npm run bench:decode
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadNpd, NpdSource } from '../src/data/npd';
import { mirrorDir } from '../src/paths';
import { TINY_IMAGENET_MIRROR } from '../src/data/npdSources';

async function main(): Promise<void> {
  const zip = process.env.BENCH_ZIP ?? (mirrorDir() ? path.join(mirrorDir() as string, TINY_IMAGENET_MIRROR.file) : undefined);
  if (!zip || !fs.existsSync(zip)) throw new Error('bench/decode: set BENCH_ZIP=<zip of images> or COPYCAT_MIRROR_DIR=<folder with tiny-imagenet-200-train80k.zip>');
  const size = Number(process.env.BENCH_SIZE ?? 32);
  const maxImages = process.env.BENCH_MAX ? Number(process.env.BENCH_MAX) : undefined;
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-decode-'));
  let peakRss = 0;
  const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  try {
    const source: NpdSource = { kind: 'zip', path: zip };
    const opts = { size, maxImages, cacheDir, log: () => undefined, onProgress: () => undefined };
    const cold = await loadNpd(source, opts);
    const warm = await loadNpd(source, opts);
    if (!warm.summary.fromCache) throw new Error('bench/decode: second load did not come from the cache');
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    console.log(JSON.stringify({
      bench: 'decode', source: path.basename(zip), size, images: cold.n, skipped: cold.summary.skipped,
      coldSeconds: +cold.summary.seconds.toFixed(2), coldImagesPerSecond: Math.round(cold.n / cold.summary.seconds),
      warmSeconds: +warm.summary.seconds.toFixed(3), peakRssMB: Math.round(peakRss / 2 ** 20),
      cacheMB: +(fs.statSync(cold.summary.cacheFile).size / 2 ** 20).toFixed(1), cpus: os.cpus().length, loadavg1: +os.loadavg()[0].toFixed(2),
    }));
  } finally {
    clearInterval(timer);
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
