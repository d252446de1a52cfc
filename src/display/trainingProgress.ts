import { Progress, progress, type ProgressOptions } from './progress';

/** The fields of a training step's progress (train/train.ts BatchProgress) that the line shows. */
export interface TrainingStepProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  learningRate: number;
  imagesPerSecond: number;
}

/**
 * One in-place progress line for a whole training run (all epochs): notebook display, terminal bar or
 * sparse log lines, depending on where it runs.
 */
export function trainingProgress(label: string, opts: Omit<ProgressOptions, 'label' | 'unit' | 'initial'> = {}): { onBatch: (p: TrainingStepProgress) => void; finish: () => void } {
  let bar: Progress | undefined;
  let last: TrainingStepProgress | undefined;
  return {
    onBatch: (p) => {
      const step = (p.epoch - 1) * p.batches + p.batch;
      // The line is made at the first reported step, so the rate counts from there: the steps up to it took
      // time it never saw (in a resumed run, an earlier process's whole share).
      bar ??= progress(p.epochs * p.batches, { ...opts, label, unit: 'step', initial: step });
      last = p;
      bar.update(step, {
        epoch: `${p.epoch}/${p.epochs}`, loss: p.loss.toFixed(4), lr: p.learningRate.toExponential(1), 'img/s': Math.round(p.imagesPerSecond),
      });
    },
    finish: () => bar?.finish(last ? { epoch: `${last.epoch}/${last.epochs}`, loss: last.loss.toFixed(4) } : undefined),
  };
}
