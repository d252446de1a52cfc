/**
 * Training support for the TF.js 'wasm' backend (stub: the kernels land in later commits).
 */
export interface WasmThreadsInfo {
  threads: number;
  simd: boolean;
  multithread: boolean;
}

/** Everything that must happen before tf.setBackend('wasm'). */
export async function prepareWasm(opts: { threads?: number } = {}): Promise<void> {
  void opts;
}

/** Registers the training kernels for 'wasm' (idempotent) and returns their names. */
export function registerWasmTrainingKernels(): string[] {
  return [];
}

export function wasmThreadsInfo(): WasmThreadsInfo {
  return { threads: 1, simd: false, multithread: false };
}
