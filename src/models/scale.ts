import * as tf from '@tensorflow/tfjs';

/**
 * Multiplies its input by a fixed constant. ResNet-9 (Page 2018) scales its logits by 0.125: the
 * global max pool feeds large activations to the classifier, and without the scale the first steps
 * at the one-cycle peak learning rate produce huge logits. tfjs-layers has no Lambda layer, so the
 * constant lives in this small serialisable layer.
 */
export class Scale extends tf.layers.Layer {
  static className = 'Scale';
  readonly scale: number;

  constructor(args: { name?: string; scale: number }) {
    super({ name: args.name });
    if (!Number.isFinite(args.scale)) throw new Error(`Scale ${args.name ?? ''}: scale must be a finite number, got ${args.scale}`);
    this.scale = args.scale;
  }

  call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.mul(x, this.scale);
  }

  getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), scale: this.scale };
  }
}

tf.serialization.registerClass(Scale);
