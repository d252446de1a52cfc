import { Progress, progress } from '../progress';
import type { BatchProgress } from '../train';

/**
 * One in-place progress line for a whole training run (all epochs): notebook display, terminal bar or
 * sparse log lines, depending on where it runs.
 */
export function trainingProgress(label: string): { onBatch: (p: BatchProgress) => void; finish: () => void } {
  let bar: Progress | undefined;
  let last: BatchProgress | undefined;
  return {
    onBatch: (p) => {
      // A resumed run's first batch is not step 1: the steps before it were done by an earlier process.
      bar ??= progress(p.epochs * p.batches, { label, unit: 'step', initial: (p.epoch - 1) * p.batches + p.batch - 1 });
      last = p;
      bar.update((p.epoch - 1) * p.batches + p.batch, {
        epoch: `${p.epoch}/${p.epochs}`, loss: p.loss.toFixed(4), lr: p.learningRate.toExponential(1), 'img/s': Math.round(p.imagesPerSecond),
      });
    },
    finish: () => bar?.finish(last ? { epoch: `${last.epoch}/${last.epochs}`, loss: last.loss.toFixed(4) } : undefined),
  };
}
