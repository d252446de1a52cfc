import { copycatTrain } from '../config';
import type { Run } from '../run';
import { resolveTrainConfig, type TrainConfig } from '../train';
import { scaleSchedule } from '../train/schedule';

/**
 * Copycat training settings for an experiment that trains `epochs` epochs instead of the profile's: the
 * profile's recipe with its learning-rate schedule scaled to the new length (warm-up and milestones keep
 * their fraction of training).
 */
export function copycatTrainFor(run: Run, epochs: number): Partial<TrainConfig> {
  const recipe = resolveTrainConfig(copycatTrain(run.config, 'NPD-SL'));
  return { epochs, schedule: scaleSchedule(recipe.schedule, recipe.epochs, epochs) };
}

/**
 * Budgets that fit the `available` images: a budget above it is replaced by `available` itself (on the
 * quick profile's 15k NPD images the default 20k, 40k and 80k become one point, "all of them"), and
 * duplicates are dropped. The result is sorted ascending.
 */
export function fitBudgets(budgets: number[], available: number): number[] {
  if (!(available > 0)) throw new Error(`fitBudgets: no NPD images available (got ${available})`);
  for (const b of budgets) {
    if (!Number.isInteger(b) || b < 1) throw new Error(`budgets must be positive integers, got ${b}`);
  }
  return [...new Set(budgets.map((b) => Math.min(b, available)))].sort((a, b) => a - b);
}
