/**
 * The backend ladder: run on the fastest TF.js backend that loads here, and say which one in every
 * report, because a copycat's accuracy is only comparable across runs if the numbers say what computed
 * them, and a 50x slower pure-JS run must never happen by accident. See docs/backends.md.
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import { cpuHasAmxBf16 } from './cpu';
import { installNativeFusedConv } from './nativeFusedConv';
import { installNativeBatchNorm } from './nativeBatchNorm';
import { installNativeGradients } from './nativeGradients';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = BackendName | 'auto';

/** Fastest first. */
export const BACKEND_LADDER: readonly BackendName[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export interface FallbackAttempt {
  backend: BackendName;
  reason: string;
}

export interface NativeLibraryInfo {
  /** The npm package that provided the 'tensorflow' backend. */
  package: string;
  packageVersion?: string;
  /** The tfjs_binding.node that was loaded. */
  addonPath?: string;
  /** TF_Version() of the libtensorflow the addon runs on. */
  tensorflowVersion?: string;
}

export interface BackendReport {
  /** Rung of the ladder in use. */
  backend: BackendName;
  /** tf.getBackend(): 'tensorflow' | 'wasm' | 'cpu'. */
  tfBackend: string;
  /** Human-readable one-liner of what computes, e.g. "native CPU (libtensorflow 2.21.0)". */
  label: string;
  tfjsVersion: string;
  gpu: boolean;
  /** Threads the backend computes with; null for native TensorFlow, which sizes its own pools (all cores by default). */
  threads: number | null;
  native?: NativeLibraryInfo;
  /** Kernels registered so that 'wasm' can train (engineer B's src/platform/wasm). */
  wasmKernels?: string[];
  /** How the choice was made: 'auto', 'COPYCAT_BACKEND', or 'prefer'. */
  requestedBy: 'auto' | 'COPYCAT_BACKEND' | 'prefer';
  /** Faster rungs that were tried and why each did not load. */
  fallbacks: FallbackAttempt[];
  /** Whether pure-JS training was explicitly allowed (allowPureJs or COPYCAT_ALLOW_PURE_JS=1). */
  pureJsAllowed: boolean;
  /**
   * Arithmetic of the native backend's oneDNN CPU kernels (convolutions, matmuls): 'strict' float32,
   * or 'bf16' (float32 tensors, products in bfloat16 on CPUs that have bf16 units). Absent on wasm/cpu.
   */
  fpmath?: FpMath;
}

/** See BackendReport.fpmath and docs/backends.md "Reduced-precision math". */
export type FpMath = 'strict' | 'bf16';
export const FPMATH_MODES: readonly FpMath[] = ['strict', 'bf16'];

export interface InitBackendOptions {
  /**
   * Use exactly this backend. Like COPYCAT_BACKEND it is an explicit request: if it does not load,
   * initBackend throws instead of silently measuring something else. COPYCAT_BACKEND wins over it so a
   * user can redirect a notebook without editing it.
   */
  prefer?: BackendChoice;
  /** Allow training on the pure-JS 'cpu' backend (tests, toy runs). */
  allowPureJs?: boolean;
  /** Skip the pure-JS banner (tests). */
  quiet?: boolean;
  /** oneDNN arithmetic for the native CPU backend; COPYCAT_FPMATH wins over it. Default 'strict'. */
  fpmath?: FpMath;
}

/** A rung's loader: sets the TF.js backend or throws with the reason it cannot. */
export type RungLoader = () => Promise<Partial<BackendReport>>;

const VALID_CHOICES: readonly BackendChoice[] = ['auto', ...BACKEND_LADDER];

let lastReport: BackendReport | undefined;
let bannerShown = false;
/** The oneDNN fpmath mode the process's native library runs with, once it has been loaded. */
let nativeFpMath: FpMath | undefined;

/** Parses a backend choice, naming where the bad value came from. */
export function parseBackendChoice(value: string, source = 'COPYCAT_BACKEND'): BackendChoice {
  const v = value.trim().toLowerCase();
  if ((VALID_CHOICES as readonly string[]).includes(v)) return v as BackendChoice;
  const alias: Record<string, BackendChoice> = { native: 'tensorflow', 'tensorflow-cpu': 'tensorflow', gpu: 'tensorflow-gpu', js: 'cpu', node: 'tensorflow' };
  if (alias[v]) return alias[v];
  throw new Error(`${source}='${value}' is not a backend; expected one of ${VALID_CHOICES.join(' | ')}`);
}

/** Parses an fpmath choice ('strict' | 'bf16'), naming where the bad value came from. */
export function parseFpMath(value: string, source = 'COPYCAT_FPMATH'): FpMath {
  const v = value.trim().toLowerCase();
  if (v === 'strict' || v === 'f32' || v === 'float32') return 'strict';
  if (v === 'bf16' || v === 'bfloat16') return 'bf16';
  throw new Error(`${source}='${value}' is not an fpmath mode; expected strict | bf16`);
}

/**
 * The mode to load the native library with. oneDNN reads ONEDNN_DEFAULT_FPMATH_MODE once per process,
 * when it creates its first kernel, so the variable is set here, before tfjs-node loads, rather than
 * asked of every user; a mode set directly in ONEDNN_DEFAULT_FPMATH_MODE is honoured and reported.
 */
function chooseFpMath(opts: InitBackendOptions): FpMath {
  const env = process.env.COPYCAT_FPMATH;
  if (env !== undefined && env.trim() !== '') return parseFpMath(env);
  if (opts.fpmath !== undefined) return parseFpMath(opts.fpmath, 'initBackend({fpmath})');
  const onednn = process.env.ONEDNN_DEFAULT_FPMATH_MODE?.trim().toUpperCase();
  return onednn === 'BF16' ? 'bf16' : 'strict';
}

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  // tfjs-node's missing-addon error is a paragraph; its first line is the useful part.
  return msg.split('\n')[0].slice(0, 300);
}

function isModuleMissing(err: unknown, pkg: string): boolean {
  const e = err as NodeJS.ErrnoException;
  return e?.code === 'MODULE_NOT_FOUND' && String(e.message).includes(`'${pkg}'`);
}

type NativeBackendLike = { binding?: { TF_Version?: string }; isUsingGpuDevice?: boolean };

/**
 * Loads a tfjs-node flavour. Its index throws at require time when the addon or libtensorflow is
 * missing, hence the try/catch; a package whose '@tensorflow/tfjs' is a different copy than ours would
 * register its backend in an engine we never use, so that is checked too.
 */
function loadNativePackage(pkg: string): NativeLibraryInfo {
  let mod: { version?: Record<string, string> };
  try {
    mod = require(pkg) as { version?: Record<string, string> };
  } catch (err) {
    if (isModuleMissing(err, pkg)) throw new Error(`${pkg} is not installed`);
    const hint = pkg === '@tensorflow/tfjs-node' ? ' (run: npm run setup:tensorflow)' : '';
    throw new Error(`${pkg} failed to load${hint}: ${errorText(err)}`);
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new Error(`${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs (duplicate tfjs copies? run npm dedupe)`);
  }
  let addonPath: string | undefined;
  try {
    const pkgJson = require.resolve(`${pkg}/package.json`);
    const preGyp = require(require.resolve('@mapbox/node-pre-gyp', { paths: [pkgJson] })) as { find(p: string): string };
    addonPath = preGyp.find(pkgJson);
  } catch {
    /* the path is informational only */
  }
  return { package: pkg, packageVersion: mod.version?.[pkg.replace('@tensorflow/', '')], addonPath };
}

async function useNative(pkgs: string[], wantGpu: boolean): Promise<Partial<BackendReport>> {
  const reasons: string[] = [];
  for (const pkg of pkgs) {
    let info: NativeLibraryInfo;
    try {
      info = loadNativePackage(pkg);
    } catch (err) {
      reasons.push(errorText(err));
      continue;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      reasons.push(`${pkg}: tf.setBackend('tensorflow') failed`);
      continue;
    }
    const be = tf.backend() as unknown as NativeBackendLike;
    info.tensorflowVersion = be.binding?.TF_Version;
    const gpu = be.isUsingGpuDevice === true;
    if (wantGpu && !gpu) {
      reasons.push(`${pkg} loaded but TensorFlow sees no GPU (CUDA/cuDNN libraries missing or no device)`);
      continue;
    }
    const lib = `libtensorflow ${info.tensorflowVersion ?? '?'}`;
    return {
      native: info,
      gpu,
      threads: null,
      label: `${gpu ? 'native GPU' : 'native CPU'} (${lib} via ${pkg})`,
    };
  }
  throw new Error(reasons.join('; '));
}

interface WasmModule {
  prepareWasm(opts?: { threads?: number }): Promise<void>;
  registerWasmTrainingKernels(): string[];
  wasmThreadsInfo?(): { threads: number; simd: boolean; multithread: boolean };
}

async function useWasm(): Promise<Partial<BackendReport>> {
  let wasm: WasmModule;
  try {
    // Resolved at run time so this file compiles and works while src/platform/wasm is absent or mid-edit.
    wasm = require('./wasm') as WasmModule;
  } catch (err) {
    throw new Error(`src/platform/wasm (training kernels for wasm) failed to load: ${errorText(err)}`);
  }
  if (typeof wasm.prepareWasm !== 'function' || typeof wasm.registerWasmTrainingKernels !== 'function') {
    throw new Error('src/platform/wasm does not export prepareWasm/registerWasmTrainingKernels');
  }
  // Order matters: thread count and the threaded build are read once when the backend starts.
  await wasm.prepareWasm();
  const kernels = wasm.registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed (wasm binary could not be loaded)");
  const t = wasm.wasmThreadsInfo?.();
  const threads = t?.threads ?? 1;
  const simd = t ? (t.simd ? 'SIMD' : 'no SIMD') : 'SIMD unknown';
  return {
    threads,
    gpu: false,
    wasmKernels: kernels,
    label: `WebAssembly (${threads} thread${threads === 1 ? '' : 's'}, ${simd}, ${kernels.length} training kernels)`,
  };
}

async function useCpu(): Promise<Partial<BackendReport>> {
  if (!(await tf.setBackend('cpu'))) throw new Error("tf.setBackend('cpu') failed");
  return { threads: 1, gpu: false, label: 'pure JavaScript (single thread, reference speed only)' };
}

export const DEFAULT_LOADERS: Readonly<Record<BackendName, RungLoader>> = {
  'tensorflow-gpu': () => useNative(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'], true),
  tensorflow: () => useNative(['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'], false),
  wasm: useWasm,
  cpu: useCpu,
};

function pureJsAllowedByEnv(): boolean {
  const v = process.env.COPYCAT_ALLOW_PURE_JS;
  return v === '1' || v === 'true' || v === 'yes';
}

/**
 * The ladder itself, with injectable loaders so its rules can be tested without native libraries.
 * Explicit choices load exactly that rung or throw; 'auto' walks the ladder and records each miss.
 */
export async function runLadder(
  choice: BackendChoice,
  requestedBy: BackendReport['requestedBy'],
  loaders: Readonly<Record<BackendName, RungLoader>>,
  allowPureJs: boolean,
): Promise<BackendReport> {
  const rungs = choice === 'auto' ? BACKEND_LADDER : [choice];
  const fallbacks: FallbackAttempt[] = [];
  for (const backend of rungs) {
    let got: Partial<BackendReport>;
    try {
      got = await loaders[backend]();
    } catch (err) {
      const reason = errorText(err);
      if (choice !== 'auto') {
        throw new Error(
          `backend '${backend}' was requested (${requestedBy === 'prefer' ? 'initBackend({prefer})' : `${requestedBy}=${backend}`}) ` +
            `but did not load: ${reason}. Unset it to let the ladder choose, or fix the cause (docs/backends.md).`,
        );
      }
      fallbacks.push({ backend, reason });
      continue;
    }
    return {
      backend,
      tfBackend: tf.getBackend(),
      label: got.label ?? backend,
      tfjsVersion: tf.version_core,
      gpu: got.gpu ?? false,
      threads: got.threads === undefined ? 1 : got.threads,
      native: got.native,
      wasmKernels: got.wasmKernels,
      requestedBy,
      fallbacks,
      pureJsAllowed: allowPureJs,
    };
  }
  throw new Error(`no backend loaded: ${fallbacks.map((f) => `${f.backend}: ${f.reason}`).join('; ')}`);
}

function showPureJsBanner(report: BackendReport): void {
  if (bannerShown) return;
  bannerShown = true;
  const lines = [
    'PURE-JAVASCRIPT BACKEND: TF.js "cpu" trains CNNs thousands of times',
    'slower than native TensorFlow (see docs/backends.md).',
    'Fine for tests and toy runs; real training refuses to start here',
    'unless COPYCAT_ALLOW_PURE_JS=1 (or allowPureJs) is set.',
    'Get native speed: npm run setup:tensorflow   (see environment.md)',
    ...report.fallbacks.map((f) => `  ${f.backend}: ${f.reason}`.slice(0, 76)),
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = `+${'-'.repeat(width + 2)}+`;
  console.warn([bar, ...lines.map((l) => `| ${l.padEnd(width)} |`), bar].join('\n'));
}

/**
 * Chooses and starts the backend: COPYCAT_BACKEND (auto|tensorflow-gpu|tensorflow|wasm|cpu) if set,
 * else opts.prefer, else the ladder. Returns (and remembers for backendReport()) what was chosen.
 */
export async function initBackend(opts: InitBackendOptions = {}): Promise<BackendReport> {
  const env = process.env.COPYCAT_BACKEND;
  let choice: BackendChoice = 'auto';
  let requestedBy: BackendReport['requestedBy'] = 'auto';
  if (env !== undefined && env.trim() !== '' && parseBackendChoice(env) !== 'auto') {
    choice = parseBackendChoice(env);
    requestedBy = 'COPYCAT_BACKEND';
  } else if (opts.prefer !== undefined && opts.prefer !== 'auto') {
    choice = parseBackendChoice(opts.prefer, 'initBackend({prefer})');
    requestedBy = 'prefer';
  }
  const allowPureJs = opts.allowPureJs === true || pureJsAllowedByEnv();
  const fpmath = chooseFpMath(opts);
  if (nativeFpMath !== undefined && nativeFpMath !== fpmath) {
    throw new Error(
      `fpmath '${fpmath}' was requested but this process's native TensorFlow already runs with '${nativeFpMath}' ` +
        '(oneDNN fixes it at its first kernel): restart the kernel or process to change it.',
    );
  }
  const before = process.env.ONEDNN_DEFAULT_FPMATH_MODE;
  if (nativeFpMath === undefined) {
    if (fpmath === 'bf16') process.env.ONEDNN_DEFAULT_FPMATH_MODE = 'BF16';
    else delete process.env.ONEDNN_DEFAULT_FPMATH_MODE;
  }
  let report: BackendReport;
  try {
    report = await runLadder(choice, requestedBy, DEFAULT_LOADERS, allowPureJs);
  } finally {
    // Only a native library keeps the setting; otherwise child processes must not inherit it.
    if (tf.getBackend() !== 'tensorflow') {
      if (before === undefined) delete process.env.ONEDNN_DEFAULT_FPMATH_MODE;
      else process.env.ONEDNN_DEFAULT_FPMATH_MODE = before;
    }
  }
  if (report.tfBackend === 'tensorflow') {
    nativeFpMath = fpmath;
    report.fpmath = fpmath;
    if (fpmath === 'bf16') report.label += cpuHasAmxBf16() ? ', bf16 math' : ', bf16 math requested (this CPU has no AMX bf16 units: oneDNN keeps float32 products)';
    installNativeGradients();
    installNativeFusedConv();
    installNativeBatchNorm();
  }
  lastReport = report;
  if (report.backend === 'cpu' && !opts.quiet) showPureJsBanner(report);
  return report;
}

/**
 * What computes now. After initBackend() that is its report; if the backend was switched since (or
 * never chosen by the ladder) the report describes the live tf.getBackend() without ladder history.
 */
export function backendReport(): BackendReport {
  const live = tf.getBackend();
  if (lastReport && lastReport.tfBackend === live) return lastReport;
  const backend: BackendName = live === 'tensorflow' ? 'tensorflow' : live === 'wasm' ? 'wasm' : 'cpu';
  const be = tf.backend() as unknown as NativeBackendLike;
  const gpu = live === 'tensorflow' && be.isUsingGpuDevice === true;
  return {
    backend: gpu ? 'tensorflow-gpu' : backend,
    tfBackend: live,
    label: live === 'tensorflow' ? `native ${gpu ? 'GPU' : 'CPU'} (libtensorflow ${be.binding?.TF_Version ?? '?'})` : live === 'cpu' ? 'pure JavaScript' : live,
    tfjsVersion: tf.version_core,
    gpu,
    threads: live === 'tensorflow' ? null : live === 'cpu' ? 1 : lastReport?.threads ?? 1,
    native: live === 'tensorflow' ? { package: 'unknown', tensorflowVersion: be.binding?.TF_Version } : undefined,
    requestedBy: 'auto',
    fallbacks: [],
    pureJsAllowed: pureJsAllowedByEnv(),
    fpmath: live === 'tensorflow' ? nativeFpMath : undefined,
  };
}

/**
 * The arithmetic this process computes in: the native backend's oneDNN mode, or 'strict' on wasm/cpu,
 * which compute in float32. Training records and member recipes compare it across runs.
 */
export function processFpMath(): FpMath {
  return backendReport().fpmath ?? 'strict';
}

/** The line every notebook and report prints, e.g. "backend tensorflow: native CPU (...) | tfjs 4.22.0 | ...". */
export function formatBackendReport(report: BackendReport = backendReport()): string {
  const threads = report.threads === null ? `TF default (${os.availableParallelism?.() ?? os.cpus().length} cores)` : String(report.threads);
  const parts = [
    `backend ${report.backend}: ${report.label}`,
    `tfjs ${report.tfjsVersion}`,
    `gpu ${report.gpu ? 'yes' : 'no'}`,
    `threads ${threads}`,
  ];
  if (report.requestedBy !== 'auto') parts.push(`chosen by ${report.requestedBy}`);
  if (report.fallbacks.length) parts.push(`skipped: ${report.fallbacks.map((f) => `${f.backend} (${f.reason})`).join(', ')}`);
  return parts.join(' | ');
}

/**
 * Call before any real training: throws on the pure-JS 'cpu' backend unless that was explicitly
 * allowed, so hours of CPU time are never burnt by a missing native library nobody noticed.
 */
export function assertTrainingBackend(purpose: string): void {
  if (tf.getBackend() !== 'cpu') return;
  const allowed = pureJsAllowedByEnv() || (lastReport?.tfBackend === 'cpu' && lastReport.pureJsAllowed);
  if (allowed) return;
  throw new Error(
    `${purpose}: refusing to train on the pure-JS 'cpu' backend (CNN training there is thousands of times slower than native). ` +
      'Run npm run setup:tensorflow for native TensorFlow, or set COPYCAT_BACKEND=wasm; to accept pure JS anyway ' +
      'set COPYCAT_ALLOW_PURE_JS=1 or initBackend({ allowPureJs: true }).',
  );
}
