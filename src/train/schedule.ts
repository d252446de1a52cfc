/** Learning-rate schedules, evaluated per step at a fractional epoch so warm-up and cosine are smooth. */
export type ScheduleConfig =
  | { kind: 'constant' }
  /** Multiply by `gamma` at each milestone epoch (0-based epoch index where the new rate starts), or every `every` epochs. */
  | { kind: 'step'; milestones?: number[]; every?: number; gamma: number }
  /** Linear warm-up from 0 over `warmupEpochs`, then half-cosine decay to 0 at the last epoch. */
  | { kind: 'cosine'; warmupEpochs: number };

export function validateSchedule(s: ScheduleConfig, field = 'schedule'): void {
  if (!s || typeof s !== 'object') throw new Error(`${field}: expected an object with kind 'constant' | 'step' | 'cosine'`);
  if (s.kind === 'constant') return;
  if (s.kind === 'step') {
    if (!(s.gamma > 0)) throw new Error(`${field}.gamma must be > 0, got ${s.gamma}`);
    if (s.milestones === undefined && s.every === undefined) throw new Error(`${field}: a 'step' schedule needs milestones or every`);
    if (s.every !== undefined && !(Number.isInteger(s.every) && s.every > 0)) throw new Error(`${field}.every must be a positive integer, got ${s.every}`);
    if (s.milestones && s.milestones.some((m) => !Number.isInteger(m) || m < 0)) throw new Error(`${field}.milestones must be non-negative integers`);
    return;
  }
  if (s.kind === 'cosine') {
    if (!(s.warmupEpochs >= 0)) throw new Error(`${field}.warmupEpochs must be >= 0, got ${s.warmupEpochs}`);
    return;
  }
  throw new Error(`${field}.kind must be 'constant', 'step' or 'cosine', got '${(s as { kind: string }).kind}'`);
}

/**
 * Learning rate for step `batch` (0-based) of epoch `epoch` (0-based), with `batches` steps per epoch
 * and `totalEpochs` epochs. Warm-up is linear per step and reaches the base rate at its last step;
 * step decays apply from the first step of a milestone epoch.
 */
export function learningRateAt(
  base: number,
  s: ScheduleConfig,
  epoch: number,
  batch: number,
  batches: number,
  totalEpochs: number,
): number {
  switch (s.kind) {
    case 'constant':
      return base;
    case 'step': {
      const drops = s.milestones ? s.milestones.filter((m) => epoch >= m).length : Math.floor(epoch / (s.every as number));
      return base * Math.pow(s.gamma, drops);
    }
    case 'cosine': {
      const step = epoch * batches + batch;
      const warm = Math.round(s.warmupEpochs * batches);
      if (step < warm) return (base * (step + 1)) / warm;
      const span = Math.max(totalEpochs * batches - warm, 1);
      const t = Math.min((step - warm) / span, 1);
      return base * 0.5 * (1 + Math.cos(Math.PI * t));
    }
  }
}

/**
 * The same schedule stretched or shrunk from `fromEpochs` to `toEpochs` epochs: warm-up and step
 * milestones keep their fraction of training. Experiments that train shorter or longer than the profile
 * (query budgets, defences) use it, so that e.g. a 2-epoch copy does not spend both epochs warming up
 * because the 12-epoch recipe warms up for 2.
 */
export function scaleSchedule(s: ScheduleConfig, fromEpochs: number, toEpochs: number): ScheduleConfig {
  if (!(fromEpochs > 0) || !(toEpochs > 0)) throw new Error(`scaleSchedule: epochs must be > 0, got ${fromEpochs} -> ${toEpochs}`);
  const f = toEpochs / fromEpochs;
  switch (s.kind) {
    case 'constant':
      return s;
    case 'cosine':
      return { kind: 'cosine', warmupEpochs: s.warmupEpochs * f };
    case 'step':
      return s.milestones
        ? { ...s, milestones: s.milestones.map((m) => Math.round(m * f)) }
        : { ...s, every: Math.max(1, Math.round((s.every as number) * f)) };
  }
}
