import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getThreadsCount, setThreadsCount } from '@tensorflow/tfjs-backend-wasm';

/**
 * Threads for the wasm backend in Node. tfjs-backend-wasm 4.22 turns its threaded-SIMD build off in
 * Node (tfjs issue #3830) because it starts its pthread workers from blob: URLs, which Node's
 * worker_threads cannot load. We write the worker script to a file, point the worker at the package's
 * standalone emscripten glue instead of a blob, and hand Node that file where the package asks for a
 * blob URL.
 */

export interface WasmThreadsInfo {
  threads: number;
  simd: boolean;
  multithread: boolean;
}

const WASM_PKG = '@tensorflow/tfjs-backend-wasm';

let requestedThreads = 1;
let multithread = false;
let prepared = false;

/** Whether the wasm backend instance exists (tf.findBackend would start it as a side effect). */
function wasmStarted(): boolean {
  return tf.engine().registry['wasm'] !== undefined;
}

/**
 * Writes the pthread worker script to a temp file, rewritten to load the emscripten glue from
 * node_modules (a file path) instead of the blob the package sends it. Returns the file path.
 */
function writeWorkerScript(workerContents: string, gluePath: string): string {
  const blobBranch = /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{[^}]*\}/;
  if (!blobBranch.test(workerContents)) {
    throw new Error(`${WASM_PKG}: unexpected pthread worker script (package version changed?); cannot enable threads in Node`);
  }
  // Same newline escaping the package applies before it builds its blob.
  const patched = workerContents.replace(blobBranch, `importScripts(${JSON.stringify(gluePath)});`).replace(/\n/g, '\\n');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'copycat-wasm-'));
  const file = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  fs.writeFileSync(file, patched);
  return file;
}

/**
 * Makes URL.createObjectURL return `file` for the worker blob the package creates (recognised by its
 * exact byte size, so no other blob is affected).
 */
function redirectWorkerBlob(workerContents: string, file: string): void {
  // The package escapes newlines before building the blob.
  const expectedSize = Buffer.byteLength(workerContents.replace(/\n/g, '\\n'), 'utf8');
  const original = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj: Blob) => {
    if (obj && obj.size === expectedSize && obj.type === 'application/javascript') return file;
    return original(obj);
  };
}

// The C side caps threads at emscripten_num_logical_cores() / 2 (it assumes hyper-threading), which in
// Node is os.cpus().length / 2: one thread on a 2-core machine. While the backend starts we report
// enough cores for the requested count, and put os.cpus back from a setup hook that the engine runs
// right after it created the backend (see restoreCpus).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const osModule = require('os') as typeof import('os');
let realCpus: (() => import('os').CpuInfo[]) | undefined;

function reportCoresFor(threads: number): void {
  const real = realCpus ?? osModule.cpus;
  realCpus = real;
  osModule.cpus = () => {
    const list = real.call(osModule);
    const out = [...list];
    while (list.length > 0 && out.length < 2 * threads) out.push(list[out.length % list.length]);
    return out;
  };
}

/** Undoes reportCoresFor; the C side read the core count once, when the module was instantiated. */
export function restoreCpus(): void {
  if (realCpus) osModule.cpus = realCpus;
  realCpus = undefined;
}

/** Registered for 'wasm' only for its setupFunc, which the engine calls once the backend exists. */
export const restoreCpusHook: tf.KernelConfig = {
  kernelName: 'CopycatWasmStarted',
  backendName: 'wasm',
  kernelFunc: () => {
    throw new Error('CopycatWasmStarted is a setup hook, not a kernel');
  },
  setupFunc: () => restoreCpus(),
};

function enableNodeThreads(): void {
  const glue = require.resolve(`${WASM_PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.js`);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { wasmWorkerContents } = require(`${WASM_PKG}/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js`) as {
    wasmWorkerContents: string;
  };
  const file = writeWorkerScript(wasmWorkerContents, glue);
  redirectWorkerBlob(wasmWorkerContents, file);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
}

/**
 * Everything that must happen before tf.setBackend('wasm'): thread count (default 1, or
 * $COPYCAT_WASM_THREADS) and, in Node with more than one thread, the threaded-SIMD build. One thread is
 * the default because, measured on a busy 2-core machine, 2 threads trained slower than 1, and the
 * threaded build's workers keep a Node script from exiting on its own (docs/backends.md). Calling it after
 * the backend started changes nothing for that backend instance (the package reads these once).
 */
export async function prepareWasm(opts: { threads?: number } = {}): Promise<void> {
  const env = process.env.COPYCAT_WASM_THREADS;
  const fromEnv = env !== undefined && env !== '' ? Number(env) : undefined;
  if (fromEnv !== undefined && !(Number.isInteger(fromEnv) && fromEnv >= 1)) {
    throw new Error(`COPYCAT_WASM_THREADS must be an integer >= 1, got '${env}'`);
  }
  const threads = opts.threads ?? fromEnv ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`prepareWasm: threads must be an integer >= 1, got ${threads}`);
  if (wasmStarted()) {
    // Already initialised: report what it runs with rather than pretending the request applied.
    return;
  }
  requestedThreads = threads;
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) as boolean;
  multithread = false;
  if (threads > 1 && simd) {
    const isNode = tf.env().get('IS_NODE') as boolean;
    if (isNode) {
      if (!prepared) enableNodeThreads();
      reportCoresFor(threads);
      if (!tf.getKernel(restoreCpusHook.kernelName, 'wasm')) tf.registerKernel(restoreCpusHook);
      multithread = true;
    } else {
      multithread = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) as boolean;
    }
  }
  prepared = true;
  setThreadsCount(threads);
}

/** Threads the running wasm backend really uses (after tf.setBackend('wasm')), SIMD and threaded build. */
export function wasmThreadsInfo(): WasmThreadsInfo {
  const started = wasmStarted();
  let simd = false;
  try {
    simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  } catch {
    /* async flag not evaluated yet: the backend has not started */
  }
  if (started) restoreCpus();
  const threads = started ? getThreadsCount() : requestedThreads;
  return { threads: Math.max(1, threads), simd, multithread: multithread && threads > 1 };
}
