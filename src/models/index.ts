import * as tf from '@tensorflow/tfjs';
import { BuildOptions } from './blocks';
import { buildResNet, buildResNet9 } from './resnet';
import { buildVggBn, buildVggSmall } from './vgg';

/**
 * Architecture registry. The oracle and the copycat are built from the same names: the Copycat
 * paper's point is that the attacker may pick an architecture different from the target's.
 * Every model takes normalised float NHWC input (src/preprocess.ts batchTensor) and ends in a
 * softmax layer named 'probs' preceded by a linear layer named 'logits'.
 */
export const ARCHITECTURES = {
  'vgg-small': {
    description: 'Seed replication net: conv32x2-pool-conv64x2-pool-dense256-dense10, ReLU, dropout',
    build: (o: BuildOptions) => buildVggSmall(o),
  },
  'vgg-bn': {
    description: 'VGG-style with batch norm: 64-64-pool-128-128-pool-256-256-pool-dense256-dense10',
    build: (o: BuildOptions) => buildVggBn(o),
  },
  'vgg-small-bn': {
    description: 'The vgg-bn layout at a quarter of the width (32-32-pool-64-64-pool-128-128-pool-dense256-dense10): fast on a CPU, converges in few epochs',
    build: (o: BuildOptions) => buildVggBn(o, [32, 64, 128], 'vgg-small-bn'),
  },
  'resnet-small': {
    description: 'ResNet-20 for CIFAR (He et al. 2016): 3 stages x 3 basic blocks, 16/32/64 filters, 1x1 projection shortcuts',
    build: (o: BuildOptions) => buildResNet(o, 3, 'resnet-small'),
  },
  'resnet-9': {
    description: "Page's DAWNBench ResNet-9 at width 16 (16-32-64-128 filters, 2 residual blocks, BN, global max pool)",
    build: (o: BuildOptions) => buildResNet9(o, 16, 'resnet-9'),
  },
  'resnet-9w32': {
    description: "Page's DAWNBench ResNet-9 at width 32 (32-64-128-256 filters)",
    build: (o: BuildOptions) => buildResNet9(o, 32, 'resnet-9w32'),
  },
  'resnet-9w48': {
    description: "Page's DAWNBench ResNet-9 at width 48 (48-96-192-384 filters): ~2.25x the work of w32, for the 95 %-of-target push",
    build: (o: BuildOptions) => buildResNet9(o, 48, 'resnet-9w48'),
  },
  'resnet-9w64': {
    description: "Page's DAWNBench ResNet-9 at its original width 64 (64-128-256-512 filters): ~1.8x the work of w48",
    build: (o: BuildOptions) => buildResNet9(o, 64, 'resnet-9w64'),
  },
  'resnet-8': {
    description: 'ResNet-8: 3 stages x 1 basic block, 16/32/64 filters (a quick, small copycat)',
    build: (o: BuildOptions) => buildResNet(o, 1, 'resnet-8'),
  },
} as const;

export type ArchitectureName = keyof typeof ARCHITECTURES;

export interface CreateModelOptions {
  /** [height, width, channels]; default [32, 32, 3]. */
  inputShape?: [number, number, number];
  /** Default 10 (CIFAR-10). */
  numClasses?: number;
  /** Initializer seed: the same seed gives identical weights. Default: random. */
  seed?: number;
  /**
   * Attach L2 kernel regularizers equivalent to PyTorch's weight_decay (the layer penalty is
   * weightDecay/2 * ||W||^2, so its gradient is weightDecay * W). Only for users who train with
   * model.fit: train() applies TrainConfig.weightDecay itself and refuses a model that has both.
   * Default 0.
   */
  weightDecay?: number;
}

export function listArchitectures(): { name: ArchitectureName; description: string }[] {
  return (Object.keys(ARCHITECTURES) as ArchitectureName[]).map((name) => ({ name, description: ARCHITECTURES[name].description }));
}

export function createModel(name: ArchitectureName, opts: CreateModelOptions = {}): tf.LayersModel {
  const arch = (ARCHITECTURES as Record<string, { build: (o: BuildOptions) => tf.LayersModel } | undefined>)[name];
  if (!arch) {
    throw new Error(`createModel: unknown architecture '${name}'; expected one of ${Object.keys(ARCHITECTURES).join(', ')}`);
  }
  const inputShape = opts.inputShape ?? [32, 32, 3];
  if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new Error(`createModel: inputShape must be [height, width, channels] of positive integers, got ${JSON.stringify(inputShape)}`);
  }
  const numClasses = opts.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw new Error(`createModel: numClasses must be an integer >= 2, got ${numClasses}`);
  }
  const wd = opts.weightDecay ?? 0;
  if (!(wd >= 0)) throw new Error(`createModel: weightDecay must be >= 0, got ${wd}`);
  return arch.build({ inputShape: [...inputShape] as [number, number, number], numClasses, seed: opts.seed, l2: wd / 2 });
}

export interface ModelSummary {
  /** Trainable + non-trainable parameter count (batch-norm moving statistics included). */
  params: number;
  trainableParams: number;
  /** Forward-pass FLOPs per image of conv and dense layers, counting a multiply-add as 2. */
  flops: number;
  /** Keras-style layer table plus the FLOPs line. */
  text: string;
}

/** Parameter count and a conv/dense FLOPs estimate (bias adds, BN, pooling, activations ignored). */
export function modelSummary(model: tf.LayersModel): ModelSummary {
  let flops = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls !== 'Conv2D' && cls !== 'Dense') continue;
    const inShape = (layer.input as tf.SymbolicTensor).shape;
    const outShape = layer.outputShape as number[];
    const inChannels = inShape[inShape.length - 1] as number;
    const outUnits = outShape[outShape.length - 1];
    if (cls === 'Dense') {
      flops += 2 * inChannels * outUnits;
    } else {
      const k = (layer.getConfig().kernelSize as number[]) ?? [1, 1];
      flops += 2 * (outShape[1] * outShape[2]) * outUnits * k[0] * k[1] * inChannels;
    }
  }
  const lines: string[] = [];
  model.summary(100, undefined, (line: string) => lines.push(line));
  const params = model.countParams();
  const trainableParams = model.trainableWeights.reduce((s, w) => s + w.shape.reduce((a: number, b) => a * (b as number), 1), 0);
  lines.push(`Estimated forward FLOPs per image (conv + dense, multiply-add = 2): ${(flops / 1e6).toFixed(1)} M`);
  return { params, trainableParams, flops, text: lines.join('\n') };
}
