/**
 * Proof that an installed addon works: always in a child process, because loading a broken native
 * library can abort the process (missing symbol, wrong glibc) and tfjs-node throws at require time.
 */
import { spawnSync } from 'child_process';

export interface VerifyResult {
  ok: boolean;
  backend?: string;
  /** TF_Version() of the loaded libtensorflow, e.g. 2.21.0. */
  tfVersion?: string;
  tfjsNode?: string;
  gpu?: boolean;
  /** Loss of a tiny conv net before and after a few SGD steps (full mode only). */
  losses?: number[];
  loadSeconds?: number;
  /**
   * Whether the addon takes list attributes (patched binding), checked by probeFusedConv() of
   * src/platform/nativeFusedConv.ts. False: an addon built from unpatched sources.
   */
  fusedConv?: boolean;
  fusedConvError?: string;
  error?: string;
}

/** Plain JS so the child starts fast (no ts-node); receives its inputs through the environment. */
const CHILD = String.raw`
const started = Date.now();
const out = {};
try {
  const tf = require(require.resolve(process.env.V_PKG, { paths: [process.env.V_DIR] }));
  out.loadSeconds = (Date.now() - started) / 1000;
  out.backend = tf.getBackend();
  const be = tf.backend();
  out.tfVersion = be.binding ? be.binding.TF_Version : undefined;
  out.tfjsNode = tf.version['tfjs-node'] || tf.version['tfjs-node-gpu'];
  out.gpu = !!be.isUsingGpuDevice;
  if (out.backend !== 'tensorflow') throw new Error('backend is ' + out.backend + ', expected tensorflow');
  const a = tf.tensor2d([[1, 2], [3, 4]]);
  const p = Array.from(tf.matMul(a, a).dataSync());
  if (p.join(',') !== '7,10,15,22') throw new Error('matMul [[1,2],[3,4]]^2 gave ' + p + ', expected 7,10,15,22');
  // The kit's own probe (src/platform/nativeFusedConv.ts), loaded through ts-node like the rest of the kit.
  require(require.resolve('ts-node', { paths: [process.env.V_DIR] })).register({ transpileOnly: true, project: process.env.V_DIR + '/tsconfig.json' });
  const probe = require(process.env.V_DIR + '/src/platform/nativeFusedConv').probeFusedConv();
  out.fusedConv = probe.ok;
  if (!probe.ok) out.fusedConvError = probe.error;
  if (process.env.V_MODE === 'full') {
    // Learnable toy task: is the left half of an 8x8 image brighter than the right half?
    const n = 64, xs = new Float32Array(n * 64), ys = new Float32Array(n * 2);
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < n; i++) {
      const left = i % 2 === 0;
      for (let r = 0; r < 8; r++) for (let c = 0; c < 8; c++) xs[i * 64 + r * 8 + c] = rnd() + ((c < 4) === left ? 0.5 : 0);
      ys[i * 2 + (left ? 0 : 1)] = 1;
    }
    const x = tf.tensor4d(xs, [n, 8, 8, 1]), y = tf.tensor2d(ys, [n, 2]);
    const model = tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 2, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ] });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy' });
    out.losses = [];
    (async () => {
      for (let step = 0; step < 15; step++) out.losses.push(Number(await model.trainOnBatch(x, y)));
      const first = out.losses[0], last = out.losses[out.losses.length - 1];
      if (!(Number.isFinite(last) && last < first)) throw new Error('training did not reduce the loss: ' + out.losses.join(', '));
      console.log('@@RESULT ' + JSON.stringify(Object.assign(out, { ok: true })));
    })().catch((e) => { console.log('@@RESULT ' + JSON.stringify(Object.assign(out, { ok: false, error: String(e && e.message || e) }))); });
  } else {
    console.log('@@RESULT ' + JSON.stringify(Object.assign(out, { ok: true })));
  }
} catch (e) {
  console.log('@@RESULT ' + JSON.stringify(Object.assign(out, { ok: false, error: String(e && e.message || e) })));
}
`;

/**
 * Loads `pkgName` (resolved from `projectDir`) in a fresh Node and checks it is the native 'tensorflow'
 * backend and computes correctly; 'full' also trains a tiny conv net and requires the loss to drop.
 */
export function verifyAddon(projectDir: string, mode: 'quick' | 'full', pkgName = '@tensorflow/tfjs-node', timeoutMs = 180_000): VerifyResult {
  const r = spawnSync(process.execPath, ['-e', CHILD], {
    cwd: projectDir,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
    // Quiet TensorFlow's C++ start-up logging; errors still come through.
    env: { ...process.env, V_PKG: pkgName, V_DIR: projectDir, V_MODE: mode, TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL ?? '2' },
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('@@RESULT '));
  if (line) return JSON.parse(line.slice('@@RESULT '.length)) as VerifyResult;
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  const tail = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-10).join('\n');
  return { ok: false, error: `child process loading ${pkgName} died (${why}):\n${tail}` };
}
