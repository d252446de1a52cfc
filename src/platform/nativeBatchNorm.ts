import * as tf from '@tensorflow/tfjs';

/**
 * Inference-mode batch norm on the native backend as one multiply and one add per activation map.
 *
 * Why: tfjs-node runs tf.batchNorm (the FusedBatchNorm kernel) as TensorFlow's FusedBatchNorm op with
 * is_training=false, which on this CPU build is slow: profiling unfolded resnet-9 models at batch 256
 * (2-core AMD EPYC) put their 8 batch norms at 254-299 ms against 57-86 ms for their 8 convolutions. With
 * the per-channel scale s = gamma / sqrt(var + eps) and shift t = beta - mean * s computed on the
 * [C] vectors first, y = x * s + t is two broadcast elementwise ops that TensorFlow vectorises: 45-57 ms
 * (`bench:inference --unfolded`; record bench/results/inference-bn-2026-12-07.jsonl, docs/backends.md).
 * Same maths up to float rounding (~1e-6). This is every unfolded inference: a training
 * model's FastBatchNorm (FixMatch's pseudo-labels every step, evaluation), and loaded models, whose batch
 * norms are the stock Keras layer. Training-mode batch norm does not use this kernel (FastBatchNorm runs
 * TensorFlow's fused training op), and the gradient of tf.batchNorm is tfjs-core's, defined on the inputs,
 * so it is unaffected. COPYCAT_FAST_BN=0 keeps the stock kernel, for A/B benchmarks.
 */
let installed: boolean | undefined;

/** Replaces the native backend's FusedBatchNorm kernel once; returns whether the faster kernel is active. */
export function installNativeBatchNorm(): boolean {
  if (installed !== undefined) return installed;
  const stock = tf.getKernel('FusedBatchNorm', 'tensorflow');
  if (process.env.COPYCAT_FAST_BN === '0' || !stock) {
    installed = false;
    return installed;
  }
  tf.unregisterKernel('FusedBatchNorm', 'tensorflow');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const { x, mean, variance, scale, offset } = args.inputs as Record<string, tf.Tensor | undefined>;
      const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
      const channels = x!.shape[x!.rank - 1];
      const perChannel = (t: tf.Tensor | undefined) => t == null || (t.rank === 1 && t.shape[0] === channels);
      // Anything but per-channel statistics over the last axis (the layers' case) keeps the stock kernel.
      if (x!.dtype !== 'float32' || ![mean, variance, scale, offset].every(perChannel)) return stock.kernelFunc(args);
      return tf.tidy(() => {
        let s = tf.rsqrt(tf.add(variance!, tf.scalar(eps)));
        if (scale != null) s = tf.mul(s, scale);
        const shifted = tf.neg(tf.mul(mean!, s));
        const t = offset != null ? tf.add(shifted, offset) : shifted;
        return tf.add(tf.mul(x!, s), t);
      }) as unknown as tf.TensorInfo;
    },
  });
  installed = true;
  return installed;
}

/** Whether installNativeBatchNorm() put the faster kernel in place (undefined: not tried yet). */
export function nativeBatchNormActive(): boolean | undefined {
  return installed;
}
