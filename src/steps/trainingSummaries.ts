import type { EpochRecord } from '../train';
import { epochSummaries } from '../train/tensorboard';
import type { StepHooks } from './inputs';
import type { Variant } from './variants';

/**
 * TensorBoard event files for one training variant (<variant>/tensorboard/), with the variant's
 * settings as its hyper-parameters, chained with the caller's onEpoch hook. TensorBoard pointed at
 * data/runs then overlays every variant of every run (`npm run board`).
 */
export function trainingSummaries(v: Variant, hooks: Pick<StepHooks, 'onEpoch'>, log: (s: string) => void) {
  const writer = epochSummaries(v.tensorboard, {
    step: v.kind, name: v.name, key: v.key, arithmetic: v.inputs.arithmetic, settings: v.inputs.settings, upstream: v.inputs.upstream,
  }, { log });
  return {
    onEpoch: (r: EpochRecord, h: EpochRecord[]): void => {
      writer.onEpoch(r);
      hooks.onEpoch?.(r, h);
    },
    close: (): void => writer.close(),
  };
}
