import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { FpMath, processFpMath } from '../platform/backend';
import { yieldToEventLoop } from '../platform/eventLoop';
import { batchTensor, predictProbabilities, range } from '../preprocess';
import { ImageSet } from '../types';
import { AugmentationConfig, augmentBatch } from './augment';
import { hasCheckpoint, loadCheckpoint, NamedTensor, saveCheckpoint } from './checkpoint';
import { WeightAverage } from './ema';
import { drawMixup, mixWithPartner } from './mixup';
import { classBalancedIndices, shuffledIndices } from './sampler';
import { learningRateAt, ScheduleConfig, validateSchedule } from './schedule';
import { teacherTargets, type Teacher } from './teacherTargets';
import { pseudoLabels, resolveSemiSupervised, SemiSupervisedConfig, UnlabeledStream, unlabeledLoss, unlabeledViews } from './fixMatch';

export type { AugmentationConfig } from './augment';
export type { ScheduleConfig } from './schedule';
export type { SemiSupervisedConfig } from './fixMatch';
export { learningRateAt } from './schedule';
export { classBalancedIndices, classCounts } from './sampler';

/**
 * Everything that defines a training run, as one plain JSON object that notebooks print and save.
 * The same loop trains the oracle (true labels) and the copycat (stolen labels).
 */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam';
  learningRate: number;
  /** SGD momentum (PyTorch formulation: v = m*v + g; w -= lr*v). Default 0.9. Ignored by Adam. */
  momentum: number;
  nesterov: boolean;
  /**
   * L2 penalty weightDecay/2 * sum ||W||^2 over conv/dense kernels added to the loss, so the
   * gradient gains weightDecay * W: with SGD that is exactly PyTorch's weight_decay (coupled, not
   * AdamW-style decoupled). Biases and batch-norm parameters are not decayed.
   */
  weightDecay: number;
  schedule: ScheduleConfig;
  augmentation: AugmentationConfig;
  /** Seeds shuffling, augmentation and dropout masks; epoch e uses the stream `${seed}/epoch/${e}`. */
  seed: number;
  /** Sample classes uniformly each epoch (see src/train/sampler.ts) instead of a plain shuffle. */
  classBalanced: boolean;
  /** 0 = off; eps mixes targets with the uniform distribution: (1-eps)*t + eps/K. */
  labelSmoothing: number;
  /** 'auto': data.soft when present, else data.labels. */
  targets: 'auto' | 'hard' | 'soft';
  /**
   * mixup alpha (src/train/mixup.ts): each batch is mixed with a permutation of itself, images and
   * targets alike, with lam ~ Beta(alpha, alpha), after augmentation and before a teacher answers.
   * 0 = off (the default; no random draws then, so runs without mixup keep their exact streams).
   */
  mixup: number;
  /**
   * Decay of an exponential moving average of the weights (src/train/ema.ts), updated after every
   * step; the run returns the average, and each epoch records its validation accuracy next to the raw
   * weights'. 0 = off (the default; runs without it keep their exact results). 0.999 averages over
   * about 1,000 steps.
   */
  ema: number;
  /**
   * Logit-adjusted loss (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021): the
   * softmax cross-entropy is taken on logits + tau * log(prior), with prior the class frequencies of
   * the training targets (add-one smoothed), so the model's own logits learn the balanced-prior
   * posterior. An alternative to classBalanced sampling for a skewed stolen set (the oracle calls a
   * quarter of the NPD images 'frog' and 3 % 'dog') that keeps every image in every epoch instead of
   * repeating the rare classes' images and skipping the frequent ones'. 0 = off; 1 is the paper's value.
   * Needs a model with a 'logits' layer before its softmax.
   */
  logitAdjustment: number;
  /**
   * Hard bootstrapping (Reed et al., "Training deep neural networks on noisy labels with
   * bootstrapping", ICLR 2015 workshop) on augmented images only: an image that augmentation moved,
   * mirrored or cut out trains towards (1 - b) * its stored target + b * the model's own arg-max
   * answer for that view (label-smoothed like the targets). A stolen label belongs to the image the
   * oracle saw; the oracle gives about a third of NPD images another label once cropped or mirrored
   * (bench:consistency), so the copy's answer is let to outvote a share of that noise. Images used as
   * they are keep their exact label. 0 = off (the default); Reed et al. used 0.2. Not with mixup.
   */
  bootstrap: number;
  /**
   * Semi-supervised training on TrainOptions.unlabeled (src/train/fixMatch.ts: FixMatch); null = off
   * (the default). Fields left out take DEFAULT_SEMI_SUPERVISED. Not with mixup, bootstrap or a teacher.
   */
  semiSupervised: (Partial<SemiSupervisedConfig> & Pick<SemiSupervisedConfig, 'method'>) | null;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  epochs: 30,
  batchSize: 128,
  optimizer: 'sgd',
  learningRate: 0.05,
  momentum: 0.9,
  nesterov: false,
  weightDecay: 5e-4,
  schedule: { kind: 'cosine', warmupEpochs: 1 },
  augmentation: { crop: true, flip: true, pad: 4 },
  seed: 0,
  classBalanced: false,
  labelSmoothing: 0,
  targets: 'auto',
  mixup: 0,
  ema: 0,
  logitAdjustment: 0,
  bootstrap: 0,
  semiSupervised: null,
};

/** Fills in DEFAULT_TRAIN_CONFIG and validates; the result is what train() records. */
export function resolveTrainConfig(cfg: Partial<TrainConfig> = {}): TrainConfig {
  const c: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    ...cfg,
    augmentation: { ...DEFAULT_TRAIN_CONFIG.augmentation, ...(cfg.augmentation ?? {}) },
    schedule: cfg.schedule ?? DEFAULT_TRAIN_CONFIG.schedule,
  };
  const posInt = (k: 'epochs' | 'batchSize') => {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`TrainConfig.${k} must be a positive integer, got ${c[k]}`);
  };
  posInt('epochs');
  posInt('batchSize');
  if (c.optimizer !== 'sgd' && c.optimizer !== 'adam') throw new Error(`TrainConfig.optimizer must be 'sgd' or 'adam', got '${c.optimizer}'`);
  if (!(c.learningRate > 0) || !Number.isFinite(c.learningRate)) throw new Error(`TrainConfig.learningRate must be > 0, got ${c.learningRate}`);
  if (!(c.momentum >= 0 && c.momentum < 1)) throw new Error(`TrainConfig.momentum must be in [0, 1), got ${c.momentum}`);
  if (!(c.weightDecay >= 0)) throw new Error(`TrainConfig.weightDecay must be >= 0, got ${c.weightDecay}`);
  if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw new Error(`TrainConfig.labelSmoothing must be in [0, 1), got ${c.labelSmoothing}`);
  if (!['auto', 'hard', 'soft'].includes(c.targets)) throw new Error(`TrainConfig.targets must be 'auto', 'hard' or 'soft', got '${c.targets}'`);
  if (!(c.mixup >= 0) || !Number.isFinite(c.mixup)) throw new Error(`TrainConfig.mixup must be a finite number >= 0 (the Beta(alpha, alpha) parameter; 0 = off), got ${c.mixup}`);
  if (!(c.ema === 0 || (c.ema > 0 && c.ema < 1))) throw new Error(`TrainConfig.ema must be 0 (off) or a decay in (0, 1) such as 0.999, got ${c.ema}`);
  if (!(c.logitAdjustment >= 0) || !Number.isFinite(c.logitAdjustment)) throw new Error(`TrainConfig.logitAdjustment must be a finite number >= 0 (tau; 0 = off, 1 = Menon et al.), got ${c.logitAdjustment}`);
  if (!(c.bootstrap >= 0 && c.bootstrap <= 1)) throw new Error(`TrainConfig.bootstrap must be in [0, 1] (weight of the model's own answer on augmented images; 0 = off), got ${c.bootstrap}`);
  if (c.bootstrap > 0 && c.mixup > 0) throw new Error('TrainConfig.bootstrap and TrainConfig.mixup cannot both be on: a mixed image is neither the original nor one augmented view');
  if (!Number.isInteger(c.seed)) throw new Error(`TrainConfig.seed must be an integer, got ${c.seed}`);
  const pad = c.augmentation.pad ?? 4;
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`TrainConfig.augmentation.pad must be a non-negative integer, got ${pad}`);
  const cutout = c.augmentation.cutout ?? 0;
  if (!Number.isInteger(cutout) || cutout < 0) throw new Error(`TrainConfig.augmentation.cutout must be a non-negative integer (square side in pixels), got ${cutout}`);
  const prob = c.augmentation.probability ?? 1;
  if (!(prob >= 0 && prob <= 1)) throw new Error(`TrainConfig.augmentation.probability must be in [0, 1] (share of images augmented), got ${prob}`);
  validateSchedule(c.schedule, 'TrainConfig.schedule');
  c.semiSupervised = resolveSemiSupervised(c.semiSupervised);
  if (c.semiSupervised && (c.mixup > 0 || c.bootstrap > 0)) throw new Error('TrainConfig.semiSupervised cannot be combined with mixup or bootstrap: each rewrites the targets of the same views');
  return c;
}

/** One finished epoch. Losses are mean cross-entropy (+ weight-decay term for `loss`). */
export interface EpochRecord {
  epoch: number; // 1-based
  learningRate: number; // at the epoch's last step
  loss: number;
  /** Training accuracy against the argmax of the targets, on augmented batches. */
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  /** The same for the weight average, when TrainConfig.ema > 0. */
  emaValLoss?: number;
  emaValAccuracy?: number;
  seconds: number;
  /** Labeled images per second (with semiSupervised each step also trains on ratio x as many unlabeled ones). */
  imagesPerSecond: number;
  /** semiSupervised: share of the epoch's unlabeled views whose pseudo-label passed the threshold. */
  pseudoLabelRate?: number;
  /**
   * Arithmetic the epoch ran with: the native backend's oneDNN mode (COPYCAT_FPMATH), 'strict' on
   * wasm/cpu, which compute in float32. Absent in checkpoints written before it was recorded.
   */
  fpmath?: FpMath;
}

/**
 * Why a checkpoint may not be continued in this process's arithmetic, or undefined if it may: a run
 * whose epochs mixed strict float32 and bf16 products would carry one mode's label but measure neither.
 * Epochs recorded before the mode was stored are taken as they are.
 */
export function fpMathMismatch(history: EpochRecord[], now: FpMath, checkpointDir: string): string | undefined {
  const other = history.filter((h) => h.fpmath !== undefined && h.fpmath !== now);
  if (!other.length) return undefined;
  const then = other[other.length - 1].fpmath!;
  return (
    `train: the checkpoint in ${checkpointDir} ran ${other.length} epoch(s) with fpmath '${then}' but this process computes '${now}'; ` +
    `resume with COPYCAT_FPMATH=${then} on the native backend (restart the kernel or process after setting it), or use another checkpointDir to start over`
  );
}

export interface BatchProgress {
  epoch: number; // 1-based
  epochs: number;
  batch: number; // 1-based
  batches: number;
  /** Running mean loss of this epoch so far. */
  loss: number;
  batchLoss: number;
  learningRate: number;
  imagesPerSecond: number;
  /** Estimated seconds until the last epoch ends (training steps only, validation excluded). */
  etaSeconds: number;
}

export interface TrainOptions {
  val?: ImageSet;
  /** Checkpoint after every epoch here, and resume from it when it already holds one. */
  checkpointDir?: string;
  onEpoch?: (record: EpochRecord, history: EpochRecord[]) => void | Promise<void>;
  onBatch?: (p: BatchProgress) => void;
  signal?: AbortSignal;
  /** Epoch summary lines; default console.log, false to silence. */
  log?: ((line: string) => void) | false;
  /** Batch size for validation forward passes; default 256. */
  evalBatchSize?: number;
  /**
   * Knowledge distillation on the augmented view: each batch's targets become
   * weight * teacher(x) + (1 - weight) * the stored targets, where x is the same augmented, normalised
   * batch the student sees. A copycat's stolen label belongs to the original image only; a crop or flip of
   * an out-of-domain image often gets another label from the oracle (bench:consistency), so a teacher that
   * answers for the view itself removes that noise. `predict` must return probabilities and not train.
   * With `onlyAltered`, images used as they are keep their stored targets (see Teacher).
   * Not part of TrainConfig (a model is not JSON): resuming with another teacher is not detected.
   */
  teacher?: Teacher;
  /**
   * Images without labels for TrainConfig.semiSupervised (the unqueried pool): never asked, never
   * labeled by anyone but the model itself.
   */
  unlabeled?: ImageSet;
}

export interface TrainResult {
  config: TrainConfig;
  /** Every epoch of the run, including those restored from a checkpoint. */
  history: EpochRecord[];
  /** Epochs restored from the checkpoint at the start of this call (0 = fresh start). */
  resumedFromEpoch: number;
  backend: string;
  /** Wall time of this call. */
  wallSeconds: number;
  /** Training throughput of the epochs run in this call (NaN if none ran). */
  imagesPerSecond: number;
}

/** State saved with each checkpoint. */
interface TrainState {
  format: 'copycat-train-state';
  version: 1;
  epochsCompleted: number;
  config: TrainConfig;
  history: EpochRecord[];
  modelName: string;
  backend: string;
  savedAt: string;
}

function checkData(model: tf.LayersModel, data: ImageSet, name: string): { numClasses: number } {
  const shape = model.inputs[0].shape;
  const outShape = model.outputs[0].shape;
  const numClasses = outShape[outShape.length - 1] as number;
  if (data.images.length !== data.n * data.height * data.width * 3) {
    throw new Error(`train: ${name}.images has ${data.images.length} bytes, expected n*height*width*3 = ${data.n * data.height * data.width * 3}`);
  }
  if (shape[1] !== data.height || shape[2] !== data.width || shape[3] !== 3) {
    throw new Error(`train: ${name} images are ${data.height}x${data.width}x3 but the model expects ${shape.slice(1).join('x')}`);
  }
  if (data.labels) {
    if (data.labels.length !== data.n) throw new Error(`train: ${name}.labels has ${data.labels.length} entries, expected n = ${data.n}`);
    for (let i = 0; i < data.n; i++) {
      if (data.labels[i] >= numClasses) throw new Error(`train: ${name}.labels[${i}] = ${data.labels[i]} but the model has ${numClasses} classes`);
    }
  }
  if (data.soft && data.soft.length !== data.n * numClasses) {
    throw new Error(`train: ${name}.soft has ${data.soft.length} values, expected n*numClasses = ${data.n * numClasses}`);
  }
  return { numClasses };
}

/** Target distribution per image (n * K) and the class used for balancing/accuracy. */
function buildTargets(data: ImageSet, cfg: TrainConfig, numClasses: number): { targets: Float32Array; classes: Uint8Array } {
  const useSoft = cfg.targets === 'soft' || (cfg.targets === 'auto' && data.soft !== undefined);
  const K = numClasses;
  const t = new Float32Array(data.n * K);
  const classes = new Uint8Array(data.n);
  if (useSoft) {
    if (!data.soft) throw new Error("train: TrainConfig.targets = 'soft' but the data has no 'soft' field");
    for (let i = 0; i < data.n; i++) {
      let best = 0;
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const v = data.soft[i * K + k];
        if (!(v >= 0)) throw new Error(`train: data.soft[${i * K + k}] = ${v}; soft targets must be probabilities >= 0`);
        sum += v;
        if (v > data.soft[i * K + best]) best = k;
      }
      if (Math.abs(sum - 1) > 1e-3) throw new Error(`train: data.soft row ${i} sums to ${sum}, expected 1 (probabilities)`);
      for (let k = 0; k < K; k++) t[i * K + k] = data.soft[i * K + k] / sum;
      classes[i] = best;
    }
  } else {
    if (!data.labels) throw new Error("train: the data has neither 'labels' nor 'soft' targets");
    for (let i = 0; i < data.n; i++) {
      t[i * K + data.labels[i]] = 1;
      classes[i] = data.labels[i];
    }
  }
  if (cfg.labelSmoothing > 0) {
    const e = cfg.labelSmoothing;
    for (let j = 0; j < t.length; j++) t[j] = (1 - e) * t[j] + e / K;
  }
  return { targets: t, classes };
}

/**
 * (1 - share) * y + share * the label-smoothed one-hot of the model's arg-max, per row; `share` is
 * [n, 1] (0 for rows that keep their target).
 */
export function bootstrapTargets(y: tf.Tensor2D, out: tf.Tensor2D, share: tf.Tensor2D, labelSmoothing: number): tf.Tensor2D {
  return tf.tidy(() => {
    const k = y.shape[1];
    let own = tf.oneHot(tf.argMax(out, -1), k).toFloat();
    if (labelSmoothing > 0) own = tf.add(tf.mul(own, 1 - labelSmoothing), labelSmoothing / k);
    return tf.add(y, tf.mul(share, tf.sub(own, y))) as tf.Tensor2D;
  });
}

/** tau * log(class frequency) as a [1, K] row, add-one smoothed so that an absent class stays finite. */
export function logPriorTensor(classes: Uint8Array, numClasses: number, tau: number): tf.Tensor2D {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < classes.length; i++) counts[classes[i]]++;
  const row = Float32Array.from(counts, (c) => tau * Math.log((c + 1) / (classes.length + numClasses)));
  return tf.tensor2d(row, [1, numClasses]);
}

function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  return cfg.optimizer === 'adam' ? tf.train.adam(cfg.learningRate) : tf.train.momentum(cfg.learningRate, cfg.momentum, cfg.nesterov);
}

function setLearningRate(opt: tf.Optimizer, lr: number): void {
  // tfjs optimizers override instanceof with duck typing, so dispatch on the class name.
  if (opt.getClassName() === 'SGD' || opt.getClassName() === 'Momentum') (opt as tf.SGDOptimizer).setLearningRate(lr);
  else (opt as unknown as { learningRate: number }).learningRate = lr; // Adam reads the number each step
}

/**
 * The graph up to the pre-softmax 'logits' layer, sharing the model's variables, so the loss is
 * the numerically stable softmax cross-entropy on logits; models without that layer are trained
 * on their (clipped) output probabilities.
 */
function logitsView(model: tf.LayersModel): { net: tf.LayersModel; fromLogits: boolean } {
  const last = model.layers[model.layers.length - 1];
  const isSoftmax = last.getClassName() === 'Activation' && last.getConfig().activation === 'softmax';
  if (isSoftmax) {
    const pre = last.input as tf.SymbolicTensor;
    return { net: tf.model({ inputs: model.inputs, outputs: pre }), fromLogits: true };
  }
  return { net: model, fromLogits: false };
}

/** Dropout layers get a fresh seed every step so masks are reproducible for a given TrainConfig.seed. */
function dropoutLayers(model: tf.LayersModel): { seed?: number }[] {
  return model.layers.filter((l) => l.getClassName() === 'Dropout') as unknown as { seed?: number }[];
}

function weightDecayTerm(model: tf.LayersModel, wd: number): tf.Scalar | null {
  const kernels = model.trainableWeights.filter((w) => /kernel$/.test(w.originalName));
  if (wd === 0 || kernels.length === 0) return null;
  const sq = kernels.map((w) => tf.sum(tf.square(w.read())));
  return tf.mul(wd / 2, tf.addN(sq)) as tf.Scalar;
}

/** Mean cross-entropy and accuracy of `model` on a labelled set, batch by batch. */
export async function evaluateLoss(model: tf.LayersModel, set: ImageSet, batchSize = 256): Promise<{ loss: number; accuracy: number }> {
  const K = model.outputs[0].shape[model.outputs[0].shape.length - 1] as number;
  const probs = await predictProbabilities(model, set, batchSize);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < set.n; i++) {
    let target: number;
    if (set.labels) target = set.labels[i];
    else if (set.soft) {
      target = 0;
      for (let k = 1; k < K; k++) if (set.soft[i * K + k] > set.soft[i * K + target]) target = k;
    } else throw new Error("evaluateLoss: the set has neither 'labels' nor 'soft'");
    let best = 0;
    for (let k = 1; k < K; k++) if (probs[i * K + k] > probs[i * K + best]) best = k;
    if (best === target) correct++;
    loss -= Math.log(Math.max(probs[i * K + target], 1e-7));
  }
  return { loss: loss / set.n, accuracy: correct / set.n };
}

class AbortError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AbortError';
  }
}

/** What one call of `train` fixes before its first batch: the config, the data's targets and the optimizer. */
interface TrainRun {
  model: tf.LayersModel;
  data: ImageSet;
  cfg: TrainConfig;
  opts: TrainOptions;
  log: (line: string) => void;
  numClasses: number;
  targets: Float32Array;
  classes: Uint8Array;
  optimizer: tf.Optimizer;
  net: tf.LayersModel;
  fromLogits: boolean;
  logPrior: tf.Tensor2D | null;
  vars: tf.Variable[];
  dropouts: ReturnType<typeof dropoutLayers>;
  savedSeeds: (number | undefined)[];
  semi: { cfg: SemiSupervisedConfig; stream: UnlabeledStream } | null;
}

/** Checks the inputs and builds the targets and the optimizer; every misuse fails here, before any work. */
function prepare(model: tf.LayersModel, data: ImageSet, cfgIn: Partial<TrainConfig>, opts: TrainOptions): TrainRun {
  const cfg = resolveTrainConfig(cfgIn);
  const log = opts.log === false ? () => undefined : (opts.log ?? ((s: string) => console.log(s)));
  const { numClasses } = checkData(model, data, 'data');
  if (opts.val) checkData(model, opts.val, 'val');
  if (data.n === 0) throw new Error('train: the training set is empty');
  const regularized = model.layers.some((l) => l.getConfig().kernelRegularizer != null);
  if (regularized && cfg.weightDecay > 0) {
    throw new Error('train: the model already has L2 kernel regularizers (createModel weightDecay) and TrainConfig.weightDecay > 0; use one of the two, not both');
  }
  const { targets, classes } = buildTargets(data, cfg, numClasses);
  const teacher = opts.teacher;
  if (teacher && !(teacher.weight >= 0 && teacher.weight <= 1)) throw new Error(`train: teacher.weight must be in [0, 1], got ${teacher.weight}`);
  if (teacher?.onlyAltered && cfg.mixup > 0) throw new Error('train: teacher.onlyAltered and TrainConfig.mixup cannot both be on: a mixed image is neither the original nor one augmented view');
  const { net, fromLogits } = logitsView(model);
  if (cfg.logitAdjustment > 0 && !fromLogits) throw new Error(`train: TrainConfig.logitAdjustment needs a model whose last layer is a softmax Activation over logits; '${model.name}' ends in ${model.layers[model.layers.length - 1].getClassName()}`);
  const semiCfg = resolveSemiSupervised(cfg.semiSupervised);
  if (opts.unlabeled && !semiCfg) throw new Error('train: TrainOptions.unlabeled was given but TrainConfig.semiSupervised is null; set it (e.g. { method: \'fixmatch\' }) or leave the unlabeled images out');
  if (semiCfg && teacher) throw new Error('train: TrainConfig.semiSupervised and a teacher cannot both be on: each sets the targets of the same views');
  if (semiCfg && !opts.unlabeled && !semiCfg.includeLabeled) throw new Error('train: TrainConfig.semiSupervised needs TrainOptions.unlabeled (the unqueried pool) or semiSupervised.includeLabeled');
  if (opts.unlabeled) checkData(model, { ...opts.unlabeled, labels: undefined, soft: undefined }, 'unlabeled');
  const empty: ImageSet = { images: new Uint8Array(0), n: 0, height: data.height, width: data.width };
  const semi = semiCfg ? { cfg: semiCfg, stream: new UnlabeledStream(opts.unlabeled ?? empty, semiCfg.includeLabeled ? data : undefined, cfg.seed) } : null;
  const optimizer = makeOptimizer(cfg);
  const logPrior = cfg.logitAdjustment > 0 ? logPriorTensor(classes, numClasses, cfg.logitAdjustment) : null;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const dropouts = dropoutLayers(model);
  return { model, data, cfg, opts, log, numClasses, targets, classes, optimizer, net, fromLogits, logPrior, vars, dropouts, savedSeeds: dropouts.map((d) => d.seed), semi };
}

/**
 * Continues from `opts.checkpointDir` when it holds a checkpoint of the same config, architecture and
 * arithmetic: weights and optimizer state are restored, the finished epochs go into `history`. Returns
 * the epochs done and the saved weight average (the caller loads and disposes it).
 */
async function resume(r: TrainRun, history: EpochRecord[]): Promise<{ startEpoch: number; savedAverage?: NamedTensor[] }> {
  const { cfg, model, optimizer } = r;
  const dir = r.opts.checkpointDir;
  if (!dir || !hasCheckpoint(dir)) return { startEpoch: 0 };
  const ck = await loadCheckpoint<TrainState>(dir);
  try {
    // A key the checkpoint predates counts as its default (e.g. mixup: 0).
    const diff = (Object.keys(cfg) as (keyof TrainConfig)[]).filter(
      (k) => k !== 'epochs' && JSON.stringify(cfg[k]) !== JSON.stringify(k in ck.state.config ? ck.state.config[k] : DEFAULT_TRAIN_CONFIG[k]),
    );
    const mixed = fpMathMismatch(ck.state.history, processFpMath(), dir);
    if (mixed) throw new Error(mixed);
    if (diff.length) {
      throw new Error(`train: ${dir} holds a run with a different config (${diff.map((k) => `${k}: ${JSON.stringify(ck.state.config[k])} there, ${JSON.stringify(cfg[k])} now`).join('; ')}); use another checkpointDir or the same config`);
    }
    const saved = ck.model.getWeights();
    const mine = model.getWeights();
    if (saved.length !== mine.length || saved.some((w, i) => w.shape.join() !== mine[i].shape.join())) {
      throw new Error(`train: the checkpoint in ${dir} is for another architecture ('${ck.state.modelName}', ${saved.length} weight tensors) than this model ('${model.name}', ${mine.length})`);
    }
    model.setWeights(saved);
    await optimizer.setWeights(ck.optimizerWeights);
    if (cfg.ema > 0 && !ck.average) throw new Error(`train: the checkpoint in ${dir} has no weight average although its config has ema ${cfg.ema}`);
    const savedAverage = ck.average;
    ck.average = undefined;
    history.push(...ck.state.history);
    r.log(`Resumed from ${dir}: ${ck.state.epochsCompleted} epoch(s) done`);
    return { startEpoch: ck.state.epochsCompleted, savedAverage };
  } finally {
    ck.model.dispose();
    ck.optimizerWeights.forEach((w) => w.tensor.dispose());
    ck.average?.forEach((w) => w.tensor.dispose());
  }
}

/** One optimizer step on batch `b` of `order`: augment, build targets (mixup, teacher, bootstrap), minimize. */
async function trainBatch(r: TrainRun, epoch: number, b: number, batches: number, order: Uint32Array | Int32Array, rng: () => number, average: WeightAverage | null, uRng?: () => number): Promise<{ count: number; loss: number; correct: number; lr: number; confident: number; unlabeled: number }> {
  const { cfg, data, numClasses, targets, optimizer, net, fromLogits, logPrior, vars, model } = r;
  const teacher = r.opts.teacher;
  const idx = order.subarray(b * cfg.batchSize, Math.min((b + 1) * cfg.batchSize, order.length));
  const count = idx.length;
  const lr = learningRateAt(cfg.learningRate, cfg.schedule, epoch, b, batches, cfg.epochs);
  setLearningRate(optimizer, lr);
  const altered = cfg.bootstrap > 0 || teacher?.onlyAltered ? new Uint8Array(count) : undefined;
  const pixels = augmentBatch(data, idx, cfg.augmentation, rng, altered);
  const tBatch = new Float32Array(count * numClasses);
  for (let i = 0; i < count; i++) tBatch.set(targets.subarray(idx[i] * numClasses, (idx[i] + 1) * numClasses), i * numClasses);
  for (const d of r.dropouts) d.seed = Math.floor(rng() * 2147483647);

  let correct: tf.Scalar | undefined;
  let x = batchTensor({ images: pixels, height: data.height, width: data.width }, range(0, count));
  let y = tf.tensor2d(tBatch, [count, numClasses]);
  if (cfg.mixup > 0) {
    const draw = drawMixup(cfg.mixup, count, rng);
    const [x0, y0] = [x, y];
    x = mixWithPartner(x0, draw);
    y = mixWithPartner(y0, draw);
    x0.dispose();
    y0.dispose();
  }
  if (teacher) {
    const stored = y;
    y = teacherTargets(teacher, x as tf.Tensor4D, stored, altered);
    stored.dispose();
  }
  const share = altered && cfg.bootstrap > 0 ? tf.tensor2d(Float32Array.from(altered, (a) => a * cfg.bootstrap), [count, 1]) : undefined;
  // FixMatch: pseudo-labels from the weak views (inference mode, outside the tape), then one forward pass
  // over the labeled batch and the strong views together, so batch-norm sees both, as in the paper.
  const u = r.semi && uRng ? semiBatch(r, b, count, uRng) : undefined;
  const input = u ? tf.concat([x, u.strongX]) : x;
  const lossT = optimizer.minimize(() => {
    const both = net.apply(input, { training: true }) as tf.Tensor2D;
    const raw = u ? (tf.slice(both, [0, 0], [count, numClasses]) as tf.Tensor2D) : both;
    const out = logPrior ? (tf.add(raw, logPrior) as tf.Tensor2D) : raw;
    // arg-max and one-hot pass no gradient, so the model's answer acts as a fixed target.
    const target = share ? bootstrapTargets(y, raw, share, cfg.labelSmoothing) : y;
    let loss: tf.Scalar = fromLogits
      ? tf.losses.softmaxCrossEntropy(target, out)
      : (tf.neg(tf.mean(tf.sum(tf.mul(target, tf.log(tf.clipByValue(out, 1e-7, 1))), -1))) as tf.Scalar);
    if (u) {
      const strongOut = tf.slice(both, [count, 0], [u.n, numClasses]) as tf.Tensor2D;
      loss = tf.add(loss, tf.mul(r.semi!.cfg.weight, unlabeledLoss(u.targets, logPrior ? (tf.add(strongOut, logPrior) as tf.Tensor2D) : strongOut, u.mask, fromLogits))) as tf.Scalar;
    }
    const decay = weightDecayTerm(model, cfg.weightDecay);
    if (decay) loss = tf.add(loss, decay);
    for (const reg of model.calculateLosses()) loss = tf.add(loss, reg) as tf.Scalar;
    correct = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(out, -1), tf.argMax(y, -1)), 'float32'))) as tf.Scalar;
    return loss;
  }, true, vars) as tf.Scalar;
  x.dispose();
  y.dispose();
  share?.dispose();
  let confident = 0;
  if (u) {
    input.dispose();
    const sum = tf.sum(u.mask);
    confident = (await sum.data())[0];
    sum.dispose();
    [u.strongX, u.targets, u.mask].forEach((t) => t.dispose());
  }
  average?.update(epoch * batches + b);
  const [lossVal] = await lossT.data();
  const correctVal = correct ? (await (correct as tf.Scalar).data())[0] : 0;
  lossT.dispose();
  (correct as tf.Scalar | undefined)?.dispose();
  if (!Number.isFinite(lossVal)) {
    const dir = r.opts.checkpointDir;
    throw new Error(`train: the loss became ${lossVal} at epoch ${epoch + 1}, batch ${b + 1} (learning rate ${lr.toPrecision(3)}); lower TrainConfig.learningRate (e.g. ${(cfg.learningRate / 10).toPrecision(3)}) or check the inputs/targets${dir ? `; the checkpoint in ${dir} still holds the last finished epoch` : ''}`);
  }
  return { count, loss: lossVal, correct: correctVal, lr, confident, unlabeled: u?.n ?? 0 };
}

/** The unlabeled part of a FixMatch step: strong views to train on, pseudo-labels and their mask. */
function semiBatch(r: TrainRun, b: number, count: number, uRng: () => number): { n: number; strongX: tf.Tensor4D; targets: tf.Tensor2D; mask: tf.Tensor1D } {
  const { cfg: s, stream } = r.semi!;
  const n = Math.max(1, Math.round(s.ratio * count));
  const { height: h, width: w } = r.data;
  const { weakX, strongX } = unlabeledViews(stream.batch(b, n), n, h, w, r.cfg.augmentation, s, uRng);
  try {
    const { targets, mask } = pseudoLabels(r.net, weakX, r.fromLogits, s.threshold, r.cfg.labelSmoothing);
    return { n, strongX, targets, mask };
  } finally {
    weakX.dispose();
  }
}

/** Scores the epoch's weights (and their average) on `opts.val` into the record: for the curves only. */
async function validate(r: TrainRun, record: EpochRecord, average: WeightAverage | null): Promise<void> {
  const val = r.opts.val;
  if (!val) return;
  const v = await evaluateLoss(r.model, val, r.opts.evalBatchSize ?? 256);
  record.valLoss = v.loss;
  record.valAccuracy = v.accuracy;
  if (average) {
    const a = await average.withAverage(() => evaluateLoss(r.model, val, r.opts.evalBatchSize ?? 256));
    record.emaValLoss = a.loss;
    record.emaValAccuracy = a.accuracy;
  }
}

/** The epoch's log line. */
function epochLine(record: EpochRecord, epochs: number): string {
  return `epoch ${record.epoch}/${epochs} lr ${record.learningRate.toExponential(2)} loss ${record.loss.toFixed(4)} acc ${(100 * record.accuracy).toFixed(2)}%` +
    (record.valAccuracy !== undefined ? ` val_loss ${record.valLoss!.toFixed(4)} val_acc ${(100 * record.valAccuracy).toFixed(2)}%` : '') +
    (record.emaValAccuracy !== undefined ? ` ema_val_acc ${(100 * record.emaValAccuracy).toFixed(2)}%` : '') +
    (record.pseudoLabelRate !== undefined ? ` pseudo ${(100 * record.pseudoLabelRate).toFixed(1)}%` : '') +
    ` ${record.imagesPerSecond.toFixed(0)} img/s (${tf.getBackend()})`;
}

/** Saves the finished epoch to `opts.checkpointDir` (a later call resumes after it). */
async function checkpoint(r: TrainRun, epochsCompleted: number, history: EpochRecord[], average: WeightAverage | null): Promise<void> {
  const dir = r.opts.checkpointDir;
  if (!dir) return;
  const state: TrainState = {
    format: 'copycat-train-state', version: 1, epochsCompleted, config: r.cfg, history,
    modelName: r.model.name, backend: tf.getBackend(), savedAt: new Date().toISOString(),
  };
  // Dropout seeds are per-step values; the saved topology keeps the user's original ones.
  r.dropouts.forEach((d, i) => (d.seed = r.savedSeeds[i]));
  await saveCheckpoint(dir, epochsCompleted, r.model, r.optimizer, state, average?.named());
}

/**
 * Trains `model` in place on uint8 `data`, one float batch at a time, with a custom
 * optimizer.minimize loop (learning-rate schedule, soft targets and reproducible dropout need it).
 * With `checkpointDir`, each finished epoch is checkpointed and a later call resumes after the last
 * finished epoch: model weights (incl. batch-norm statistics), optimizer slots and iteration count,
 * history and the config are restored; the random streams are a pure function of (seed, epoch), so a
 * resumed run sees the same shuffles/augmentations/dropout masks as an uninterrupted one.
 */
export async function train(model: tf.LayersModel, data: ImageSet, cfgIn: Partial<TrainConfig>, opts: TrainOptions = {}): Promise<TrainResult> {
  const t0 = Date.now();
  const r = prepare(model, data, cfgIn, opts);
  const { cfg, numClasses, classes, optimizer } = r;
  const history: EpochRecord[] = [];
  let average: WeightAverage | null = null;
  let savedAverage: NamedTensor[] | undefined;

  try {
    const resumed = await resume(r, history);
    const startEpoch = resumed.startEpoch;
    savedAverage = resumed.savedAverage;
    if (cfg.ema > 0) {
      average = new WeightAverage(model, cfg.ema);
      if (savedAverage) average.load(savedAverage, `train: ${opts.checkpointDir}`);
    }
    savedAverage?.forEach((w) => w.tensor.dispose());
    savedAverage = undefined;

    const n = data.n;
    const batches = Math.ceil(n / cfg.batchSize);
    const totalSteps = (cfg.epochs - startEpoch) * batches;
    let stepsDone = 0;
    let trainSeconds = 0;
    let imagesSeen = 0;
    const runStart = Date.now();

    for (let epoch = startEpoch; epoch < cfg.epochs; epoch++) {
      const rng = seedrandom(`${cfg.seed}/epoch/${epoch}`);
      const order = cfg.classBalanced ? classBalancedIndices(classes, numClasses, rng) : shuffledIndices(n, rng);
      const uRng = r.semi?.stream.startEpoch(epoch);
      const eStart = Date.now();
      let lossSum = 0;
      let correctSum = 0;
      let confidentSum = 0;
      let unlabeledSum = 0;
      let lr = cfg.learningRate;
      for (let b = 0; b < batches; b++) {
        if (opts.signal?.aborted) {
          throw new AbortError(`train: aborted during epoch ${epoch + 1}, batch ${b + 1}; ${opts.checkpointDir ? `the checkpoint in ${opts.checkpointDir} holds ${epoch} finished epoch(s)` : 'no checkpointDir was given, so nothing was saved'}`);
        }
        const step = await trainBatch(r, epoch, b, batches, order, rng, average, uRng);
        confidentSum += step.confident;
        unlabeledSum += step.unlabeled;
        await yieldToEventLoop();
        lr = step.lr;
        lossSum += step.loss * step.count;
        correctSum += step.correct;
        stepsDone++;
        imagesSeen += step.count;
        if (opts.onBatch) {
          const elapsed = (Date.now() - runStart) / 1000;
          const done = b * cfg.batchSize + step.count;
          const eSec = (Date.now() - eStart) / 1000;
          opts.onBatch({
            epoch: epoch + 1, epochs: cfg.epochs, batch: b + 1, batches,
            loss: lossSum / done, batchLoss: step.loss, learningRate: lr,
            imagesPerSecond: eSec > 0 ? done / eSec : 0,
            etaSeconds: (elapsed / stepsDone) * (totalSteps - stepsDone),
          });
        }
      }
      const seconds = (Date.now() - eStart) / 1000;
      trainSeconds += seconds;
      const record: EpochRecord = {
        epoch: epoch + 1, learningRate: lr, loss: lossSum / n, accuracy: correctSum / n,
        seconds, imagesPerSecond: n / Math.max(seconds, 1e-9), fpmath: processFpMath(),
        ...(r.semi ? { pseudoLabelRate: unlabeledSum ? confidentSum / unlabeledSum : 0 } : {}),
      };
      await validate(r, record, average);
      history.push(record);
      r.log(epochLine(record, cfg.epochs));
      await checkpoint(r, epoch + 1, history, average);
      if (opts.onEpoch) await opts.onEpoch(record, history);
    }
    // The average is what the run delivers; the raw weights' last accuracy stays in the history.
    average?.applyTo();
    return {
      config: cfg, history, resumedFromEpoch: startEpoch, backend: tf.getBackend(),
      wallSeconds: (Date.now() - t0) / 1000,
      imagesPerSecond: trainSeconds > 0 ? imagesSeen / trainSeconds : NaN,
    };
  } finally {
    r.logPrior?.dispose();
    average?.dispose();
    savedAverage?.forEach((w) => w.tensor.dispose());
    r.dropouts.forEach((d, i) => (d.seed = r.savedSeeds[i]));
    optimizer.dispose();
    // MomentumOptimizer.dispose() (tfjs-core 4.22) forgets the learning-rate scalar of its SGD base.
    if (optimizer.getClassName() === 'Momentum') (optimizer as unknown as { c?: tf.Tensor }).c?.dispose();
  }
}
