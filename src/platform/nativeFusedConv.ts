import * as tf from '@tensorflow/tfjs';
import { NativeBackend, registeredNativeBackend } from './nativeOps';

/**
 * Conv2D + bias + ReLU as ONE TensorFlow op (_FusedConv2D) on the native backend.
 *
 * Why: tfjs-node runs tf.fused.conv2d as three ops (Conv2D, then Add for the bias, then Relu), each a
 * full pass over the output. Profiling the batch-norm-folded resnet-9 oracle (batch 256, 2-core CPU)
 * put the bias Add and Relu at ~30 % of the convolution time. TensorFlow's own _FusedConv2D does all
 * three in one pass, but takes list attributes (fused_ops, TArgs) that the stock tfjs-node binding cannot
 * pass; patches/@tensorflow+tfjs-node+4.22.0.patch adds them, and `npm run setup:tensorflow` compiles
 * the patched binding. An addon built from unpatched sources fails the probe below and keeps the stock
 * kernel. Only the forward kernel changes: tfjs-core's gradient of fused.conv2d uses the op's output and
 * is unaffected. COPYCAT_FUSED_CONV=0 keeps the stock kernel.
 */
interface FusedConvAttrs {
  strides: number | [number, number];
  pad: 'same' | 'valid' | number | unknown;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | [number, number];
  dimRoundingMode?: string;
  activation?: string;
}

let installed: boolean | undefined;

function pair(v: number | [number, number]): [number, number] {
  return typeof v === 'number' ? [v, v] : v;
}

function fusedConvNative(be: NativeBackend, x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor, a: FusedConvAttrs): tf.Tensor {
  const b = be.binding;
  const [sh, sw] = pair(a.strides);
  return be.executeSingleOutput('_FusedConv2D', [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'TArgs', type: b.TF_ATTR_TYPE, value: [b.TF_FLOAT] },
    { name: 'num_args', type: b.TF_ATTR_INT, value: 1 },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, sh, sw, 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: a.pad === 'same' ? 'SAME' : 'VALID' },
    { name: 'fused_ops', type: b.TF_ATTR_STRING, value: a.activation === 'relu' ? ['BiasAdd', 'Relu'] : ['BiasAdd'] },
  ], [x, filter, bias]);
}

/** The cases _FusedConv2D computes exactly like tfjs; everything else goes to the stock kernel. */
function canFuse(x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor | undefined, prelu: tf.Tensor | undefined, a: FusedConvAttrs): bias is tf.Tensor {
  const [dh, dw] = pair(a.dilations);
  return bias != null && prelu == null && a.dataFormat === 'NHWC' && (a.pad === 'same' || a.pad === 'valid') &&
    a.dimRoundingMode == null && dh === 1 && dw === 1 && (a.activation === 'relu' || a.activation === 'linear' || a.activation == null) &&
    x.dtype === 'float32' && filter.dtype === 'float32' && bias.dtype === 'float32' && bias.rank === 1 && bias.shape[0] === filter.shape[3];
}

/**
 * Runs _FusedConv2D once on a 3x3 image whose answer is known. Not ok when the native backend is missing
 * or its addon lacks list attributes (built from the unpatched binding); `npm run setup:tensorflow`
 * uses this to decide whether an installed addon must be rebuilt.
 */
export function probeFusedConv(be: NativeBackend | null = registeredNativeBackend()): { ok: boolean; error?: string } {
  if (!be) return { ok: false, error: 'no native tensorflow backend registered' };
  try {
    const y = tf.tidy(() => fusedConvNative(be, tf.tensor4d([1, -2, 3, 4, -5, 6, 7, 8, -9], [1, 3, 3, 1]), tf.ones([2, 2, 1, 2]), tf.tensor1d([0.5, -20]),
      { strides: 1, pad: 'valid', dataFormat: 'NHWC', dilations: 1, activation: 'relu' }));
    const got = Array.from(y.dataSync()).join(',');
    y.dispose();
    const want = '0,0,2.5,0,14.5,0,0.5,0';
    return got === want ? { ok: true } : { ok: false, error: `_FusedConv2D gave ${got}, expected ${want}` };
  } catch (e) {
    return { ok: false, error: String((e as Error)?.message ?? e).split('\n')[0] };
  }
}

/**
 * Replaces the native backend's FusedConv2D kernel once, if the addon supports _FusedConv2D. Returns
 * whether the fused kernel is active. Call with the native backend active.
 */
export function installNativeFusedConv(): boolean {
  if (installed !== undefined) return installed;
  if (process.env.COPYCAT_FUSED_CONV === '0') {
    // Opt-out for A/B benchmarks (and a way around a TensorFlow build that misbehaves).
    installed = false;
    return installed;
  }
  const native = registeredNativeBackend();
  const stock = tf.getKernel('FusedConv2D', 'tensorflow');
  if (!native || !stock || !probeFusedConv(native).ok) {
    installed = false;
    return installed;
  }
  tf.unregisterKernel('FusedConv2D', 'tensorflow');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.Tensor | undefined>;
      const attrs = args.attrs as unknown as FusedConvAttrs;
      if (canFuse(x!, filter!, bias, preluActivationWeights, attrs)) return fusedConvNative(native, x!, filter!, bias, attrs);
      return stock.kernelFunc(args);
    },
  });
  installed = true;
  return installed;
}

/** Whether installNativeFusedConv() put the fused kernel in place (undefined: not tried yet). */
export function nativeFusedConvActive(): boolean | undefined {
  return installed;
}
