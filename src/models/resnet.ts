import * as tf from '@tensorflow/tfjs';
import { batchNorm, BuildOptions, conv, dense, SeedSequence } from './blocks';

/**
 * CIFAR ResNet of He et al. (2016, section 4.2): a 3x3 conv with 16 filters, three stages of
 * `blocksPerStage` basic blocks with 16/32/64 filters (stride 2 at the start of stages 2 and 3),
 * global average pooling and a dense classifier; depth = 6 * blocksPerStage + 2 (1 -> ResNet-8,
 * 3 -> ResNet-20). Shortcuts are identities, or a 1x1 stride-2 conv + BN where the shape changes
 * (the paper's option B; its option A zero-pads instead).
 */
export function buildResNet(opts: BuildOptions, blocksPerStage: number, name: string): tf.LayersModel {
  const seeds = new SeedSequence(opts.seed);
  const input = tf.input({ shape: opts.inputShape, name: 'image' });
  const relu = (n: string) => tf.layers.activation({ name: n, activation: 'relu' });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor) => l.apply(x) as tf.SymbolicTensor;

  let x = ap(conv('stem_conv', 16, seeds, opts, { useBias: false }), input);
  x = ap(relu('stem_relu'), ap(batchNorm('stem_bn'), x));
  let channels = 16;
  [16, 32, 64].forEach((filters, s) => {
    for (let b = 0; b < blocksPerStage; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const p = `s${s + 1}b${b + 1}`;
      let y = ap(conv(`${p}_conv1`, filters, seeds, opts, { strides: stride, useBias: false }), x);
      y = ap(relu(`${p}_relu1`), ap(batchNorm(`${p}_bn1`), y));
      y = ap(conv(`${p}_conv2`, filters, seeds, opts, { useBias: false }), y);
      y = ap(batchNorm(`${p}_bn2`), y);
      let shortcut = x;
      if (stride !== 1 || channels !== filters) {
        shortcut = ap(conv(`${p}_proj`, filters, seeds, opts, { kernelSize: 1, strides: stride, useBias: false }), x);
        shortcut = ap(batchNorm(`${p}_proj_bn`), shortcut);
      }
      x = ap(relu(`${p}_out`), tf.layers.add({ name: `${p}_add` }).apply([y, shortcut]) as tf.SymbolicTensor);
      channels = filters;
    }
  });
  x = ap(tf.layers.globalAveragePooling2d({ name: 'gap' }), x);
  x = ap(dense('logits', opts.numClasses, seeds, opts, 'linear'), x);
  x = ap(tf.layers.activation({ name: 'probs', activation: 'softmax' }), x);
  return tf.model({ inputs: input, outputs: x, name });
}

/**
 * The ResNet-9 of Page's DAWNBench CIFAR-10 entry ("How to train your ResNet", 2018; 94 % in 24
 * epochs at width 64): prep conv(w) -> conv(2w)+pool + residual(2w) -> conv(4w)+pool ->
 * conv(8w)+pool + residual(8w) -> global max pool -> dense, every conv 3x3 + BN + ReLU. `width` is
 * the prep layer's filter count; 'resnet-9' uses less than the original 64 because on a 2-core CPU
 * the cost of a step here is in the large early activations, and a narrower net fits the 1-hour
 * budget of the full profile (docs/experiments.md).
 */
export function buildResNet9(opts: BuildOptions, width: number, name: string): tf.LayersModel {
  const seeds = new SeedSequence(opts.seed);
  const input = tf.input({ shape: opts.inputShape, name: 'image' });
  const ap = (l: tf.layers.Layer, x: tf.SymbolicTensor) => l.apply(x) as tf.SymbolicTensor;
  const convBn = (p: string, filters: number, x: tf.SymbolicTensor) => {
    const y = ap(conv(`${p}_conv`, filters, seeds, opts, { useBias: false }), x);
    return ap(tf.layers.activation({ name: `${p}_relu`, activation: 'relu' }), ap(batchNorm(`${p}_bn`), y));
  };
  const pool = (p: string, x: tf.SymbolicTensor) => ap(tf.layers.maxPooling2d({ name: `${p}_pool`, poolSize: 2, strides: 2 }), x);
  const residual = (p: string, filters: number, x: tf.SymbolicTensor) =>
    tf.layers.add({ name: `${p}_add` }).apply([x, convBn(`${p}b`, filters, convBn(`${p}a`, filters, x))]) as tf.SymbolicTensor;

  let x = convBn('prep', width, input);
  x = pool('layer1', convBn('layer1', 2 * width, x));
  x = residual('res1', 2 * width, x);
  x = pool('layer2', convBn('layer2', 4 * width, x));
  x = pool('layer3', convBn('layer3', 8 * width, x));
  x = residual('res3', 8 * width, x);
  x = ap(tf.layers.globalMaxPooling2d({ name: 'gmp' }), x);
  x = ap(dense('fc', opts.numClasses, seeds, opts, 'linear'), x);
  // Page scales the logits by 0.125: the global max pool feeds large activations to the classifier, and
  // unscaled logits blow up in the first steps at the peak learning rate. Rescaling is a stock layer, so
  // the saved model needs no custom class.
  x = ap(tf.layers.rescaling({ name: 'logits', scale: 0.125 }), x);
  x = ap(tf.layers.activation({ name: 'probs', activation: 'softmax' }), x);
  return tf.model({ inputs: input, outputs: x, name });
}
