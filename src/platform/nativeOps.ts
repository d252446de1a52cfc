import * as tf from '@tensorflow/tfjs';

/**
 * The part of tfjs-node's backend that runs a TensorFlow op by name: what the kit's native kernels and
 * gradients (nativeGradients.ts, nativeFusedConv.ts) call to reach ops tfjs-node does not expose.
 */
export interface NativeBackend {
  executeSingleOutput(name: string, attrs: unknown[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs?(name: string, attrs: unknown[], inputs: tf.Tensor[], n: number): tf.Tensor[];
  binding: {
    TF_ATTR_TYPE: number;
    TF_ATTR_INT: number;
    TF_ATTR_FLOAT: number;
    TF_ATTR_STRING: number;
    TF_ATTR_BOOL: number;
    TF_FLOAT: number;
  };
}

/** The native backend when it is the active one, else null. */
export function activeNativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  return asNative(tf.backend());
}

/** The registered native backend (active or not), else null. */
export function registeredNativeBackend(): NativeBackend | null {
  return asNative(tf.findBackend('tensorflow'));
}

function asNative(be: unknown): NativeBackend | null {
  const b = be as Partial<NativeBackend> | null;
  return b && typeof b.executeSingleOutput === 'function' && b.binding ? (b as NativeBackend) : null;
}
