/**
 * Training support for the TF.js 'wasm' backend (tfjs-backend-wasm 4.22): gradient kernels it lacks or
 * runs slowly, rebuilt from its fast XNNPACK convolution / matmul and plain JS on the wasm heap, plus
 * thread setup for Node. See docs/wasm.md.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { rememberOriginal, originalKernel } from './wasmHeap';
import { conv2dBackpropInputKernel } from './conv2dBackpropInput';
import { conv2dBackpropFilterKernel } from './conv2dBackpropFilter';
import { transposeKernel } from './transpose';
import { batchMatMulKernel } from './batchMatMul';
import { maxPoolGradKernel } from './maxPoolGrad';
import { sumKernel } from './sum';
export { prepareWasm, wasmThreadsInfo } from './threads';
export type { WasmThreadsInfo } from './threads';

/** Every kernel this module registers for 'wasm', in the order a profile of a CNN train step ranked them. */
export const WASM_TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  conv2dBackpropFilterKernel,
  conv2dBackpropInputKernel,
  batchMatMulKernel,
  maxPoolGradKernel,
  sumKernel,
  transposeKernel,
];

const installed = new Map<string, tf.KernelConfig>();

/** False when the user switched the kernels off with COPYCAT_WASM_KERNELS=0. */
export function wasmKernelsEnabled(): boolean {
  const v = process.env.COPYCAT_WASM_KERNELS;
  return !(v === '0' || v === 'false' || v === 'off');
}

/**
 * Registers the training kernels for 'wasm', replacing the package's versions (kept to fall back to for
 * cases our kernels do not cover). Idempotent; may run before or after tf.setBackend('wasm'). Returns
 * the names of the kernels now ours; with COPYCAT_WASM_KERNELS=0 registers nothing and returns [].
 * `only` restricts it to some of them (benchmarks: the package's kernels plus the missing dFilter).
 */
export function registerWasmTrainingKernels(only?: readonly string[]): string[] {
  if (!wasmKernelsEnabled()) return [];
  const chosen = only ? WASM_TRAINING_KERNELS.filter((k) => only.includes(k.kernelName)) : WASM_TRAINING_KERNELS;
  if (only && chosen.length !== only.length) {
    const known = WASM_TRAINING_KERNELS.map((k) => k.kernelName);
    throw new Error(`registerWasmTrainingKernels: unknown kernel(s) ${only.filter((n) => !known.includes(n))}; known: ${known}`);
  }
  for (const config of chosen) {
    const name = config.kernelName;
    const mine = installed.get(name);
    if (mine && tf.getKernel(name, 'wasm') === mine) continue;
    rememberOriginal(name);
    const original = originalKernel(name);
    // If the backend initialises after this call, only registered kernels get their setup run: ours must
    // run the original's so the fallback path has its C function bound.
    const ours: tf.KernelConfig = {
      ...config,
      setupFunc: original?.setupFunc ? (backend) => original.setupFunc?.(backend) : undefined,
    };
    if (original) tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(ours);
    installed.set(name, ours);
  }
  return chosen.map((k) => k.kernelName);
}

/**
 * Puts the package's own kernels back (for with/without comparisons). Conv2DBackpropFilter has no
 * original, so training CNNs on 'wasm' fails again after this.
 */
export function unregisterWasmTrainingKernels(): void {
  for (const [name, ours] of installed) {
    if (tf.getKernel(name, 'wasm') !== ours) continue;
    tf.unregisterKernel(name, 'wasm');
    const original = originalKernel(name);
    if (original) tf.registerKernel(original);
  }
  installed.clear();
}
