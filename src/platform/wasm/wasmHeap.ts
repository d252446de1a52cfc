import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Low-level access to the wasm backend shared by the training kernels: tensors as views on the wasm heap,
 * outputs allocated on it, and direct calls into the C functions the package exports.
 *
 * Views are re-created after every allocation because growing the wasm memory detaches old ArrayBuffers.
 */

export type WasmBackend = BackendWasm;
type TensorInfo = tf.TensorInfo;

/** The data id the C side knows a tensor by. */
export function cId(backend: WasmBackend, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId).id;
}

export function f32(backend: WasmBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`wasm training kernels: expected a float32 tensor, got ${t.dtype} [${t.shape}]`);
  return backend.typedArrayFromHeap(t) as Float32Array;
}

export function alloc(backend: WasmBackend, shape: number[]): TensorInfo {
  return backend.makeOutput(shape, 'float32');
}

/** Releases temporaries (also drops XNNPACK operators cached on them through the backend's disposal hook). */
export function free(backend: WasmBackend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/**
 * A tensor the C side sees at `floatOffset` floats into `base` without a copy (XNNPACK reads operands
 * at arbitrary addresses). Must be released with freeView, never free: it owns no allocation.
 */
export function viewOf(backend: WasmBackend, base: TensorInfo, floatOffset: number, shape: number[]): TensorInfo {
  const { memoryOffset } = backend.dataIdMap.get(base.dataId);
  return backend.makeOutput(shape, 'float32', memoryOffset + 4 * floatOffset);
}

export function freeView(backend: WasmBackend, view: TensorInfo): void {
  const id = cId(backend, view);
  backend.dataIdMap.delete(view.dataId);
  (backend.wasm as unknown as { tfjs: { disposeData(id: number): void } }).tfjs.disposeData(id);
}

type Cwrapped = (...args: unknown[]) => void;
interface Cwrapper {
  cwrap(name: string, ret: null, argTypes: string[]): Cwrapped;
}

const conv2dFns = new WeakMap<object, Cwrapped>();

/** Geometry of one call of XNNPACK's convolution (NHWC, explicit padding, stride and dilation). */
export interface XnnConvGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  filterHeight: number;
  filterWidth: number;
  outChannels: number;
  padTop: number;
  padBottom: number;
  padLeft: number;
  padRight: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
}

export function xnnConvOutShape(g: XnnConvGeometry): [number, number, number, number] {
  const effH = (g.filterHeight - 1) * g.dilationHeight + 1;
  const effW = (g.filterWidth - 1) * g.dilationWidth + 1;
  const outH = Math.floor((g.inHeight + g.padTop + g.padBottom - effH) / g.strideHeight) + 1;
  const outW = Math.floor((g.inWidth + g.padLeft + g.padRight - effW) / g.strideWidth) + 1;
  return [g.batch, outH, outW, g.outChannels];
}

/**
 * Calls the package's exported C `Conv2D` (XNNPACK) with explicit paddings and dilations: the JS
 * kernel in front of it only accepts what tf.conv2d can express, the gradients need more.
 * `filter` is [filterHeight, filterWidth, inChannels, outChannels].
 */
export function xnnConv2d(backend: WasmBackend, x: TensorInfo, filter: TensorInfo, g: XnnConvGeometry): TensorInfo {
  const pads = [g.padTop, g.padBottom, g.padLeft, g.padRight];
  if (pads.some((p) => p < 0 || !Number.isInteger(p))) throw new Error(`xnnConv2d: paddings must be integers >= 0, got ${pads}`);
  const outShape = xnnConvOutShape(g);
  if (outShape[1] <= 0 || outShape[2] <= 0) throw new Error(`xnnConv2d: empty output ${outShape} for ${JSON.stringify(g)}`);
  let fn = conv2dFns.get(backend.wasm);
  if (!fn) {
    fn = (backend.wasm as unknown as Cwrapper).cwrap('Conv2D', null, new Array<string>(19).fill('number'));
    conv2dFns.set(backend.wasm, fn);
  }
  const out = alloc(backend, outShape);
  fn(
    cId(backend, x), g.batch, g.inHeight, g.inWidth,
    cId(backend, filter), g.filterHeight, g.filterWidth,
    g.padTop, g.padRight, g.padBottom, g.padLeft, /* isSamePad */ 0,
    g.dilationHeight, g.dilationWidth, g.strideHeight, g.strideWidth,
    g.inChannels, g.outChannels, cId(backend, out),
  );
  return out;
}

/**
 * The kernels registered for 'wasm' before ours replaced them, so a replacement can hand the cases it
 * does not speed up back to the original.
 */
const originals = new Map<string, tf.KernelConfig | null>();

export function rememberOriginal(kernelName: string): void {
  if (!originals.has(kernelName)) originals.set(kernelName, tf.getKernel(kernelName, 'wasm') ?? null);
}

/** The package's kernel: remembered when ours replaced it, else whatever is registered (not ours). */
export function originalKernel(kernelName: string): tf.KernelConfig | null {
  if (originals.has(kernelName)) return originals.get(kernelName) ?? null;
  return tf.getKernel(kernelName, 'wasm') ?? null;
}

export function runOriginal(
  kernelName: string,
  args: { inputs: tf.NamedTensorInfoMap; backend: WasmBackend; attrs?: tf.NamedAttrMap },
): TensorInfo {
  const k = originalKernel(kernelName);
  if (!k) throw new Error(`wasm backend has no original '${kernelName}' kernel to fall back to`);
  return k.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
}
