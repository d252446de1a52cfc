import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { pickImages } from '../data/split';
import { copycatTrain, type ExperimentConfig } from '../config';
import { createModel } from '../models';
import { imageHashes } from '../oracle/identity';
import type { Oracle } from '../oracle/types';
import { predictProbabilities } from '../preprocess';
import { resolveSelection, roundSizes, sampleCandidates, selectQueries, SelectionConfig } from '../querySelection';
import { readJson, Run, writeJson } from '../run';
import { labelImages, StolenLabelSet, stolenImageSet, type LabelImagesOptions } from '../stolenLabels';
import { resolveTrainConfig, train, type TrainConfig } from '../train';
import { scaleSchedule } from '../train/schedule';
import { ImageSet } from '../types';
import type { Variant } from './variants';
import { npdOfRun } from './inputs';

/**
 * NPD-SL bought in rounds (config query.selection): the first slice of the budget is a seeded random
 * draw, then before each later round a copy is trained on the answers bought so far and a strategy
 * (src/querySelection.ts) picks the next slice from the images not bought yet.
 *
 * Resumable without paying twice: each round's choice is written to rounds.json before any of it is
 * asked, so a killed run asks for the same images again and the query cache answers those already paid;
 * a round's copy checkpoints in rounds/<r>/checkpoints.
 */

interface RoundsFile {
  format: 'copycat-selection-rounds';
  version: 1;
  selection: SelectionConfig;
  budget: number;
  candidates: number;
  /** Content hashes of the images chosen in each round, in the order chosen. */
  rounds: { round: number; strategy: string; hashes: string[]; chosenAt: string }[];
}

export interface RoundsSummary {
  selection: SelectionConfig;
  /** Images chosen (and asked) per round; paid = not already in the query cache then. */
  rounds: { round: number; strategy: string; images: number; paid: number }[];
}

/**
 * The NPD images the attacker may choose queries from: query.selection.candidates of data.npdSource (a
 * prefix-stable seeded subset), or all of them.
 */
export function npdCandidatesForRun(run: Run, log?: (s: string) => void): Promise<ImageSet> {
  return npdOfRun(run, run.config.data.npdSource, run.config.query.selection?.candidates ?? undefined, log);
}

/** The layer the copy's logits are computed from, for k-center distances. */
function featureModel(model: tf.LayersModel): tf.LayersModel {
  const dense = [...model.layers].reverse().find((l) => l.getClassName() === 'Dense');
  if (!dense) throw new Error(`query.selection kcenter: '${model.name}' has no Dense layer whose input could serve as features`);
  return tf.model({ inputs: model.inputs, outputs: dense.input as tf.SymbolicTensor });
}

async function features(model: tf.LayersModel, set: ImageSet): Promise<{ rows: Float32Array; dim: number }> {
  const f = featureModel(model);
  const rows = await predictProbabilities(f, set);
  return { rows, dim: rows.length / Math.max(1, set.n) };
}

export async function stealNpdInRounds(
  run: Run, v: Variant, oracle: Oracle,
  common: Pick<LabelImagesOptions, 'cacheFile' | 'batchSize' | 'signal'> & { outFile: string },
  log: (s: string) => void,
): Promise<{ stolen: StolenLabelSet; summary: RoundsSummary }> {
  const sel = resolveSelection(run.config.query.selection);
  const budget = run.config.data.npdImages;
  const candidates = await npdCandidatesForRun(run, log);
  if (budget == null || budget >= candidates.n) {
    throw new Error(`query.selection '${sel.strategy}' chooses ${budget ?? 'all'} of ${candidates.n} NPD images: set data.npdImages (the query budget) below ${candidates.n}, or drop query.selection`);
  }
  const hashes = imageHashes(candidates.images, candidates.n, candidates.height * candidates.width * 3);
  const where = new Map<string, number>();
  hashes.forEach((h, i) => where.has(h) || where.set(h, i));
  const file = path.join(v.dir, 'rounds.json');
  const state: RoundsFile = fs.existsSync(file)
    ? readJson<RoundsFile>(file, 'selection rounds')
    : { format: 'copycat-selection-rounds', version: 1, selection: sel, budget, candidates: candidates.n, rounds: [] };
  const sizes = roundSizes(budget, sel.rounds);
  const bought: number[] = [];
  const summary: RoundsSummary = { selection: sel, rounds: [] };
  const indexOf = (h: string): number => {
    const i = where.get(h);
    if (i === undefined) throw new Error(`${file}: an image chosen earlier (hash ${h}) is no longer among the NPD images of data.npdSource; start the variant afresh ({ force: true })`);
    return i;
  };
  for (let r = 0; r < sizes.length; r++) {
    let chosen: number[];
    const recorded = state.rounds.find((x) => x.round === r);
    if (recorded) {
      chosen = recorded.hashes.map(indexOf);
    } else {
      const left = candidates.n - bought.length;
      const strategy = r === 0 ? 'random' : sel.strategy;
      log(`query selection round ${r + 1}/${sizes.length}: choosing ${sizes[r]} of ${left} images (${strategy})`);
      chosen = r === 0 ? await firstSlice(run, sizes[0], where) : await nextSlice(run, v, candidates, bought, sizes[r], sel, r, (images) => answered(oracle, images, common, v, r), log);
      state.rounds.push({ round: r, strategy, hashes: chosen.map((i) => hashes[i]), chosenAt: new Date().toISOString() });
      // Written before any of the round is asked: a killed run asks for the same images again.
      writeJson(file, state);
    }
    const asked = await labelImages(oracle, pickImages(candidates, chosen), {
      ...common, outFile: path.join(v.dir, 'rounds', `round-${r + 1}.json`), name: `NPD-SL-round-${r + 1}`, progress: { label: `oracle queries (round ${r + 1})` },
    });
    summary.rounds.push({ round: r + 1, strategy: recorded?.strategy ?? (r === 0 ? 'random' : sel.strategy), images: chosen.length, paid: asked.queries.askedThisCall });
    bought.push(...chosen);
  }
  // The stolen set in the source's order; every answer is in the cache by now, so this asks nothing.
  const all = [...new Set(bought)].sort((a, b) => a - b);
  const stolen = await labelImages(oracle, pickImages(candidates, all), { ...common, name: 'NPD-SL' });
  return { stolen, summary };
}

/** Round 1: the same seeded draw a random budget of that size takes (so it shares its answers). */
async function firstSlice(run: Run, size: number, where: Map<string, number>): Promise<number[]> {
  const sub = await npdOfRun(run, run.config.data.npdSource, size, () => undefined);
  const subHashes = imageHashes(sub.images, sub.n, sub.height * sub.width * 3);
  const out = subHashes.map((h) => where.get(h)!).filter((i) => i !== undefined);
  if (out.length !== size) throw new Error(`query selection: the first slice found ${out.length} of ${size} images among the candidates`);
  return out;
}

/** A later round: a copy trained on what is bought ranks the rest. */
async function nextSlice(
  run: Run, v: Variant, candidates: ImageSet, bought: number[], size: number, sel: SelectionConfig, r: number,
  answersOf: (images: ImageSet) => Promise<ImageSet>, log: (s: string) => void,
): Promise<number[]> {
  const c = run.config.copycat;
  const boughtSet = new Set(bought);
  let left = Array.from({ length: candidates.n }, (_, i) => i).filter((i) => !boughtSet.has(i));
  if (sel.strategy === 'kcenter') left = sampleCandidates(left, Math.max(sel.kcenterCandidates, size), `${run.config.seed}/kcenter/${r}`);
  const boughtImages = pickImages(candidates, bought);
  const labels = await answersOf(boughtImages);
  const model = createModel(c.architecture, { seed: run.config.seed + 100 + r });
  try {
    if (sel.strategy !== 'random') {
      await train(model, labels, roundCopyRecipe(run.config, sel.roundEpochs, run.config.seed + r), {
        checkpointDir: path.join(v.dir, 'rounds', String(r + 1), 'checkpoints'), log,
      });
    }
    const leftImages = pickImages(candidates, left);
    const input = { candidates: left, count: size, numClasses: 10, rng: seedrandom(`${run.config.seed}/selection/${r}`) } as Parameters<typeof selectQueries>[1];
    if (sel.strategy === 'kcenter') {
      const f = await features(model, leftImages);
      const b = await features(model, boughtImages);
      Object.assign(input, { features: f.rows, boughtFeatures: b.rows, dim: f.dim });
    } else if (sel.strategy !== 'random') {
      input.probs = await predictProbabilities(model, leftImages);
      input.numClasses = input.probs.length / Math.max(1, leftImages.n);
      const counts = new Array<number>(input.numClasses).fill(0);
      for (const l of labels.labels!) counts[l]++;
      input.boughtPerClass = counts;
    }
    return selectQueries(sel.strategy, input);
  } finally {
    model.dispose();
  }
}

/**
 * The recipe of a round's copy: the NPD-SL copycat's, shortened to `roundEpochs` with its schedule shrunk
 * alike. Cutting the epochs alone would leave e.g. a 48-epoch recipe's 4-epoch warm-up as the whole of a
 * 4-epoch round: the copy would never train at its full rate nor decay, and rank images with a weak model.
 * No pool: a round's copy only ranks what to buy next.
 */
export function roundCopyRecipe(config: Pick<ExperimentConfig, 'copycat'>, roundEpochs: number, seed: number): TrainConfig {
  const recipe = resolveTrainConfig(copycatTrain(config, 'NPD-SL'));
  return { ...recipe, seed, epochs: roundEpochs, schedule: scaleSchedule(recipe.schedule, recipe.epochs, roundEpochs), semiSupervised: null };
}

/** The images bought so far with their stolen labels: every one is in the query cache, so nothing is asked. */
async function answered(oracle: Oracle, images: ImageSet, common: Pick<LabelImagesOptions, 'cacheFile' | 'batchSize' | 'signal'>, v: Variant, r: number): Promise<ImageSet> {
  const s = await labelImages(oracle, images, { ...common, outFile: path.join(v.dir, 'rounds', `bought-before-round-${r + 1}.json`), name: 'NPD-SL-bought', progress: false });
  if (s.queries.askedThisCall > 0) throw new Error(`query selection: ${s.queries.askedThisCall} images bought in earlier rounds were not in the query cache ${common.cacheFile}`);
  return stolenImageSet(images, s, { verify: false });
}
