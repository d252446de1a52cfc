import * as tf from '@tensorflow/tfjs';
import { activeNativeBackend } from './nativeOps';

/**
 * Faster gradients for the native (libtensorflow) backend.
 *
 * Why: tfjs-core differentiates ReLU as dy * step(x), and tfjs-node implements Step with six full-size
 * ops (isNaN, greater, ones, fill, where, select). Profiling one resnet-9 training step (batch 128) on
 * the 2-core CPU put ~100 ms of a ~430 ms step in that gradient (bench/profileStep.ts). TensorFlow has a single
 * fused op for it, ReluGrad(gradients, features) = gradients * (features > 0), which tfjs-node can
 * run directly. The override is mathematically the same gradient; on any other backend the gradient
 * falls back to tfjs-core's own formula at call time, so switching backends later stays correct.
 */
let installed = false;

/** dL/dx of relu(x) given dL/dy, on whichever backend is active. */
export function reluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const be = activeNativeBackend();
  if (be && dy.dtype === 'float32' && x.dtype === 'float32') {
    return be.executeSingleOutput('ReluGrad', [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: be.binding.TF_FLOAT }], [dy, x]);
  }
  return tf.mul(dy, tf.step(tf.cast(x, 'float32')));
}

/** Registers the faster ReLU gradient once; returns whether this call installed it. */
export function installNativeGradients(): boolean {
  if (installed) return false;
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => reluGrad(dy as tf.Tensor, x) };
    },
  });
  installed = true;
  return true;
}

/**
 * Training-mode batch norm over NHWC with TensorFlow's fused ops (FusedBatchNorm forward,
 * FusedBatchNormGrad backward): one op each way instead of ~8 and ~6 elementwise ops. Returns null
 * when the native backend is not active (the caller then uses its portable formula).
 * `mean`/`variance` are the batch statistics (variance Bessel-corrected, as TF returns it for the
 * moving average); the caller owns them.
 */
export function nativeBatchNormTraining(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): { y: tf.Tensor4D; mean: tf.Tensor1D; variance: tf.Tensor1D } | null {
  const be = activeNativeBackend();
  if (!be || typeof be.executeMultipleOutputs !== 'function' || x.rank !== 4 || x.dtype !== 'float32') return null;
  const run = be.executeMultipleOutputs.bind(be);
  const b = be.binding;
  const attrs = [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.TF_ATTR_BOOL, value: true },
  ];
  let mean: tf.Tensor1D | undefined;
  let variance: tf.Tensor1D | undefined;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, o] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const [y, bm, bv, r1, r2] = run('FusedBatchNorm', attrs, [xIn, g, o, tf.tensor1d([]), tf.tensor1d([])], 5);
    mean = tf.keep(bm) as tf.Tensor1D;
    variance = tf.keep(bv) as tf.Tensor1D;
    save([xIn, g, r1, r2]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sg, s1, s2] = saved;
        const [dx, dg, db] = run('FusedBatchNormGrad', attrs, [dy, sx, sg, s1, s2], 5);
        return [dx, dg, db];
      },
    };
  });
  const y = f(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
