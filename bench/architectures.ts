/**
 * Training and inference speed of the registry architectures through the kit's real training loop
 * (uint8 batches, crop+flip augmentation, SGD with momentum and weight decay), on random images.
 * One JSON line per architecture; helps choose an oracle/copycat that fits a time budget.
 *
 *   npx ts-node --transpile-only bench/architectures.ts [--arch resnet-9,vgg-small | all] [--images 2560] [--batch 128] [--backend auto]
 *
 * img/s is that of the second epoch (the first one builds kernels and optimizer slots).
 */
import { parseArgs } from 'util';
import { formatBackendReport, initBackend, parseBackendChoice } from '../src/platform/backend';
import { ArchitectureName, createModel, listArchitectures, modelSummary } from '../src/models';
import { predictProbabilities } from '../src/preprocess';
import { train } from '../src/train';
import { syntheticSet } from './args';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: 'all' },
      images: { type: 'string', default: '2560' },
      batch: { type: 'string', default: '128' },
      backend: { type: 'string', default: 'auto' },
    },
  });
  const known = listArchitectures().map((a) => a.name);
  const archs = values.arch === 'all' ? known : (values.arch!.split(',') as ArchitectureName[]);
  for (const a of archs) if (!known.includes(a)) throw new Error(`--arch: unknown architecture '${a}'; expected ${known.join(', ')} or all`);
  const n = Number(values.images);
  const batchSize = Number(values.batch);
  if (!(Number.isInteger(n) && n > 0 && Number.isInteger(batchSize) && batchSize > 0)) throw new Error('--images and --batch must be positive integers');
  const report = await initBackend({ prefer: parseBackendChoice(values.backend!, '--backend') });
  console.error(formatBackendReport(report));
  const set = syntheticSet(n);
  for (const arch of archs) {
    const model = createModel(arch, { seed: 1 });
    const r = await train(model, set, { epochs: 2, batchSize, optimizer: 'sgd', learningRate: 0.01, momentum: 0.9, augmentation: { crop: true, flip: true, pad: 4 } }, { log: false });
    const t0 = performance.now();
    await predictProbabilities(model, set, 256);
    const inferRate = n / ((performance.now() - t0) / 1000);
    const s = modelSummary(model);
    console.log(JSON.stringify({
      bench: 'architectures', arch, backend: report.backend, params: s.params, mflops: +(s.flops / 1e6).toFixed(1), batch: batchSize,
      trainImgPerSec: +r.history[1].imagesPerSecond.toFixed(1), inferImgPerSec: +inferRate.toFixed(1),
    }));
    model.dispose();
  }
}

main().catch((e) => {
  console.error(`bench/architectures: ${(e as Error).message}`);
  process.exit(1);
});
