import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { childResult, runChild, skipUnlessNative } from './nativeChild';
import {
  assertTrainingBackend,
  BackendName,
  backendReport,
  formatBackendReport,
  initBackend,
  parseBackendChoice,
  parseFpMath,
  RungLoader,
  runLadder,
} from '../src/platform/backend';
import { cpuHasAmxBf16 } from '../src/platform/cpu';

const ENV_KEYS = ['COPYCAT_BACKEND', 'COPYCAT_ALLOW_PURE_JS', 'COPYCAT_FPMATH'] as const;

/** Runs `fn` with the given env vars set (undefined = unset), restoring them afterwards. */
async function withEnv<T>(vars: Partial<Record<(typeof ENV_KEYS)[number], string | undefined>>, fn: () => Promise<T> | T): Promise<T> {
  const saved = ENV_KEYS.map((k) => [k, process.env[k]] as const);
  for (const k of ENV_KEYS) delete process.env[k];
  for (const [k, v] of Object.entries(vars)) if (v !== undefined) process.env[k] = v;
  try {
    return await fn();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Fake rungs: the listed ones fail with a recognisable reason, the rest "load" onto 'cpu'. */
function fakeLoaders(failing: BackendName[], calls: BackendName[]): Record<BackendName, RungLoader> {
  const make = (name: BackendName): RungLoader => async () => {
    calls.push(name);
    if (failing.includes(name)) throw new Error(`fake ${name} unavailable`);
    await tf.setBackend('cpu');
    return { label: `fake ${name}`, gpu: name === 'tensorflow-gpu', threads: name === 'tensorflow' ? null : 3 };
  };
  return { 'tensorflow-gpu': make('tensorflow-gpu'), tensorflow: make('tensorflow'), wasm: make('wasm'), cpu: make('cpu') };
}

/** Runs a JS snippet in a fresh Node with ts-node, so native libraries / banners never touch this process. */
describe('backend ladder', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  describe('parseBackendChoice', () => {
    it('accepts every rung and auto, case-insensitively', () => {
      for (const n of ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']) assert.equal(parseBackendChoice(n.toUpperCase()), n);
    });
    it('rejects a bogus name, naming the source and the valid choices', () => {
      assert.throws(() => parseBackendChoice('tpu'), /COPYCAT_BACKEND='tpu' is not a backend; expected one of auto \| tensorflow-gpu \| tensorflow \| wasm \| cpu/);
    });
  });

  describe('fpmath', () => {
    it('parseFpMath accepts strict and bf16 (and their long names), case-insensitively', () => {
      assert.equal(parseFpMath('strict'), 'strict');
      assert.equal(parseFpMath(' F32 '), 'strict');
      assert.equal(parseFpMath('BF16'), 'bf16');
      assert.equal(parseFpMath('bfloat16'), 'bf16');
    });
    it('rejects anything else, naming the source and the valid modes', () => {
      assert.throws(() => parseFpMath('fp16'), /COPYCAT_FPMATH='fp16' is not an fpmath mode; expected strict \| bf16/);
      assert.throws(() => parseFpMath('tf32', 'initBackend({fpmath})'), /initBackend\(\{fpmath\}\)='tf32'/);
    });
    it('cpuHasAmxBf16 reads the AMX-BF16 flag (AVX512-BF16 alone does not make oneDNN use bf16 products)', () => {
      assert.equal(cpuHasAmxBf16('flags\t: fpu sse avx512f avx512_bf16 amx_tile'), false);
      assert.equal(cpuHasAmxBf16('flags\t: fpu amx_bf16 amx_int8'), true);
      assert.equal(cpuHasAmxBf16('flags\t: fpu sse avx2 avx512f avx512_vnni'), false);
    });
    it('a bogus COPYCAT_FPMATH is a clear error, whatever the backend', async () => {
      await withEnv({ COPYCAT_BACKEND: 'cpu', COPYCAT_ALLOW_PURE_JS: '1', COPYCAT_FPMATH: 'half' }, async () => {
        await assert.rejects(initBackend({ quiet: true }), /COPYCAT_FPMATH='half' is not an fpmath mode/);
      });
    });
    it('the pure-JS backend reports no fpmath and leaves ONEDNN_DEFAULT_FPMATH_MODE as it was (children inherit it)', async () => {
      const before = process.env.ONEDNN_DEFAULT_FPMATH_MODE;
      const rep = await withEnv({ COPYCAT_BACKEND: 'cpu', COPYCAT_ALLOW_PURE_JS: '1', COPYCAT_FPMATH: 'bf16' }, () => initBackend({ quiet: true }));
      assert.equal(rep.fpmath, undefined);
      assert.doesNotMatch(rep.label, /bf16/);
      assert.equal(process.env.ONEDNN_DEFAULT_FPMATH_MODE, before);
    });
  });

  describe('runLadder (fake rungs)', () => {
    it('auto takes the first rung that loads and records every faster one with its reason', async () => {
      const calls: BackendName[] = [];
      const r = await runLadder('auto', 'auto', fakeLoaders(['tensorflow-gpu', 'tensorflow'], calls), false);
      assert.equal(r.backend, 'wasm');
      assert.equal(r.label, 'fake wasm');
      assert.equal(r.threads, 3);
      assert.deepEqual(calls, ['tensorflow-gpu', 'tensorflow', 'wasm']);
      assert.deepEqual(r.fallbacks, [
        { backend: 'tensorflow-gpu', reason: 'fake tensorflow-gpu unavailable' },
        { backend: 'tensorflow', reason: 'fake tensorflow unavailable' },
      ]);
    });
    it('auto stops at the top rung when it loads', async () => {
      const calls: BackendName[] = [];
      const r = await runLadder('auto', 'auto', fakeLoaders([], calls), false);
      assert.equal(r.backend, 'tensorflow-gpu');
      assert.equal(r.gpu, true);
      assert.deepEqual(calls, ['tensorflow-gpu']);
      assert.deepEqual(r.fallbacks, []);
    });
    it('an explicit choice that fails is an error, never a silent fallback', async () => {
      const calls: BackendName[] = [];
      await assert.rejects(
        runLadder('tensorflow', 'COPYCAT_BACKEND', fakeLoaders(['tensorflow'], calls), false),
        /backend 'tensorflow' was requested \(COPYCAT_BACKEND=tensorflow\) but did not load: fake tensorflow unavailable/,
      );
      assert.deepEqual(calls, ['tensorflow']);
    });
    it('an explicit choice loads only that rung', async () => {
      const calls: BackendName[] = [];
      const r = await runLadder('wasm', 'prefer', fakeLoaders([], calls), true);
      assert.deepEqual(calls, ['wasm']);
      assert.equal(r.backend, 'wasm');
      assert.equal(r.requestedBy, 'prefer');
      assert.equal(r.pureJsAllowed, true);
    });
    it('reports every rung when nothing loads', async () => {
      await assert.rejects(runLadder('auto', 'auto', fakeLoaders(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'], []), false), /no backend loaded: tensorflow-gpu: fake.*cpu: fake cpu unavailable/);
    });
  });

  describe('initBackend / overrides', () => {
    it('COPYCAT_BACKEND=cpu gives cpu, with a complete report', async () => {
      const r = await withEnv({ COPYCAT_BACKEND: 'cpu' }, () => initBackend({ quiet: true }));
      assert.equal(r.backend, 'cpu');
      assert.equal(tf.getBackend(), 'cpu');
      assert.equal(r.tfBackend, 'cpu');
      assert.equal(r.requestedBy, 'COPYCAT_BACKEND');
      assert.equal(r.tfjsVersion, tf.version_core);
      assert.equal(r.gpu, false);
      assert.equal(r.threads, 1);
      assert.deepEqual(r.fallbacks, []);
      assert.equal(r.native, undefined);
      assert.ok(r.label.length > 0);
      assert.deepEqual(backendReport(), r);
    });
    it('COPYCAT_BACKEND wins over prefer, so a notebook can be redirected without editing it', async () => {
      const r = await withEnv({ COPYCAT_BACKEND: 'cpu' }, () => initBackend({ prefer: 'tensorflow-gpu', quiet: true }));
      assert.equal(r.backend, 'cpu');
    });
    it('prefer is used when COPYCAT_BACKEND is unset or auto', async () => {
      for (const env of [undefined, 'auto']) {
        const r = await withEnv({ COPYCAT_BACKEND: env }, () => initBackend({ prefer: 'cpu', quiet: true }));
        assert.equal(r.backend, 'cpu');
        assert.equal(r.requestedBy, 'prefer');
      }
    });
    it('a bogus COPYCAT_BACKEND is a clear error', async () => {
      await withEnv({ COPYCAT_BACKEND: 'bogus' }, () =>
        assert.rejects(initBackend({ quiet: true }), /COPYCAT_BACKEND='bogus' is not a backend; expected one of/),
      );
    });
    it('a bogus prefer is a clear error naming initBackend', async () => {
      await withEnv({}, () => assert.rejects(initBackend({ prefer: 'fast' as BackendName, quiet: true }), /initBackend\(\{prefer\}\)='fast'/));
    });
    it('formatBackendReport is one line naming backend, tfjs version, gpu, threads and how it was chosen', async () => {
      const r = await withEnv({ COPYCAT_BACKEND: 'cpu' }, () => initBackend({ quiet: true }));
      const line = formatBackendReport(r);
      assert.ok(!line.includes('\n'));
      assert.match(line, new RegExp(`^backend cpu: .+ \\| tfjs ${tf.version_core.replace(/\./g, '\\.')} \\| gpu no \\| threads 1 \\| chosen by COPYCAT_BACKEND$`));
      const withFallbacks = formatBackendReport({ ...r, requestedBy: 'auto', fallbacks: [{ backend: 'tensorflow', reason: 'no addon' }] });
      assert.match(withFallbacks, /skipped: tensorflow \(no addon\)$/);
      assert.match(formatBackendReport({ ...r, threads: null }), /threads TF default \(\d+ cores\)/);
    });
  });

  describe('assertTrainingBackend', () => {
    it('throws on pure JS, naming the purpose and the ways out', async () => {
      await withEnv({ COPYCAT_BACKEND: 'cpu' }, async () => {
        await initBackend({ quiet: true });
        assert.throws(() => assertTrainingBackend('oracle training'), /oracle training: refusing to train on the pure-JS 'cpu' backend.*setup:tensorflow.*COPYCAT_ALLOW_PURE_JS=1/);
      });
    });
    it('also throws when tf was switched to cpu behind the ladder', async () => {
      await withEnv({}, async () => {
        await tf.setBackend('cpu');
        assert.throws(() => assertTrainingBackend('copycat training'), /refusing to train/);
      });
    });
    it('passes with COPYCAT_ALLOW_PURE_JS=1 or initBackend({ allowPureJs: true })', async () => {
      await withEnv({ COPYCAT_BACKEND: 'cpu', COPYCAT_ALLOW_PURE_JS: '1' }, async () => {
        await initBackend({ quiet: true });
        assertTrainingBackend('toy run');
      });
      await withEnv({ COPYCAT_BACKEND: 'cpu' }, async () => {
        await initBackend({ allowPureJs: true, quiet: true });
        assertTrainingBackend('toy run');
      });
    });
  });

  it('pure JS prints a boxed banner once per process on stderr', () => {
    const r = runChild(
      `const b = require('./src/platform/backend');
       (async () => { await b.initBackend(); await b.initBackend(); console.log('@@' + b.backendReport().backend); })()
         .catch((e) => { console.log('@@ERR ' + e.message); });`,
      { COPYCAT_BACKEND: 'cpu' },
    );
    assert.match(r.stdout, /@@cpu/, r.stdout + r.stderr);
    assert.equal((r.stderr.match(/PURE-JAVASCRIPT BACKEND/g) ?? []).length, 1, r.stderr);
    assert.match(r.stderr, /^\+-+\+$/m);
  });
});

/** A seeded LCG and fill(n) (n floats in [-1, 1)), as source text for the child snippets below. */
const seededFill = (seed: number) => String.raw`
  let s = ${seed};
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const fill = (n) => Float32Array.from({ length: n }, rnd);
`;

/** Deterministic inputs shared by parent (cpu) and child (native). */
const CONV_CASE = String.raw`
  ${seededFill(7)}
  const x = tf.tensor4d(fill(2 * 9 * 9 * 3), [2, 9, 9, 3]);
  const w = tf.tensor4d(fill(3 * 3 * 3 * 4), [3, 3, 3, 4]);
  const c = tf.tensor4d(fill(2 * 5 * 5 * 4), [2, 5, 5, 4]);
  const f = (x, w) => tf.conv2d(x, w, 2, 'same').mul(c).sum();
  const y = tf.conv2d(x, w, 2, 'same');
  const [dx, dw] = tf.grads(f)([x, w]);
  const out = { y: Array.from(y.dataSync()), dx: Array.from(dx.dataSync()), dw: Array.from(dw.dataSync()) };
`;

describe('native backend (tfjs-node built by setup:tensorflow)', function () {
  this.timeout(120_000);

  it('auto picks native and its conv2d forward/backward match the cpu backend', async function () {
    skipUnlessNative(this);
    const r = runChild(
      `const b = require('./src/platform/backend');
       const tf = require('@tensorflow/tfjs');
       (async () => {
         const rep = await b.initBackend();
         ${CONV_CASE}
         console.log('@@' + JSON.stringify({ report: rep, line: b.formatBackendReport(rep), ...out }));
       })().catch((e) => console.log('@@' + JSON.stringify({ error: e.message })));`,
      { COPYCAT_BACKEND: 'auto' },
    );
    const got = childResult<{
      error?: string;
      report: { backend: string; tfBackend: string; native?: { tensorflowVersion?: string } };
      line: string;
      y: number[];
      dx: number[];
      dw: number[];
    }>(r);
    assert.equal(got.error, undefined);
    assert.ok(['tensorflow', 'tensorflow-gpu'].includes(got.report.backend), got.line);
    assert.equal(got.report.tfBackend, 'tensorflow');
    assert.match(got.report.native?.tensorflowVersion ?? '', /^\d+\.\d+/);

    await tf.setBackend('cpu');
    const want = tf.tidy(() => {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      return new Function('tf', `${CONV_CASE}; return out;`)(tf) as { y: number[]; dx: number[]; dw: number[] };
    });
    for (const k of ['y', 'dx', 'dw'] as const) {
      assert.equal(got[k].length, want[k].length, `${k} length`);
      const maxAbs = Math.max(...want[k].map(Math.abs));
      const maxErr = Math.max(...got[k].map((v, i) => Math.abs(v - want[k][i])));
      assert.ok(maxErr <= 1e-4 * Math.max(1, maxAbs), `${k}: native differs from cpu by ${maxErr} (scale ${maxAbs})`);
    }
  });
});

/**
 * A convolution big enough for oneDNN's blocked kernels (the ones that honour fpmath); run in a child per
 * mode, compared with float64 sums done here, so the test sees whether bf16 products were really used.
 */
const FPMATH_CASE = String.raw`
  ${seededFill(11)}
  const xs = fill(4 * 8 * 8 * 32), ws = fill(3 * 3 * 32 * 32);
  const y = tf.conv2d(tf.tensor4d(xs, [4, 8, 8, 32]), tf.tensor4d(ws, [3, 3, 32, 32]), 1, 'same');
  const out = { xs: Array.from(xs), ws: Array.from(ws), y: Array.from(y.dataSync()) };
`;

/** conv2d 'same', stride 1, NHWC, in float64: the reference both modes are measured against. */
function conv64(xs: number[], ws: number[], n: number, hw: number, c: number, o: number): Float64Array {
  const y = new Float64Array(n * hw * hw * o);
  for (let b = 0; b < n; b++)
    for (let i = 0; i < hw; i++)
      for (let j = 0; j < hw; j++)
        for (let k = 0; k < o; k++) {
          let acc = 0;
          for (let di = -1; di <= 1; di++)
            for (let dj = -1; dj <= 1; dj++) {
              const [ii, jj] = [i + di, j + dj];
              if (ii < 0 || jj < 0 || ii >= hw || jj >= hw) continue;
              for (let ch = 0; ch < c; ch++) acc += xs[((b * hw + ii) * hw + jj) * c + ch] * ws[(((di + 1) * 3 + dj + 1) * c + ch) * o + k];
            }
          y[((b * hw + i) * hw + j) * o + k] = acc;
        }
  return y;
}

describe('native backend fpmath (COPYCAT_FPMATH)', function () {
  this.timeout(120_000);

  const runMode = (mode: string) =>
    childResult<{ error?: string; fpmath?: string; label: string; onednn?: string; again?: string; xs: number[]; ws: number[]; y: number[] }>(
      runChild(
        `const b = require('./src/platform/backend');
         const tf = require('@tensorflow/tfjs');
         (async () => {
           const rep = await b.initBackend({ prefer: 'tensorflow' });
           ${FPMATH_CASE}
           let again = '';
           delete process.env.COPYCAT_FPMATH;
           try { await b.initBackend({ prefer: 'tensorflow', fpmath: rep.fpmath === 'bf16' ? 'strict' : 'bf16' }); } catch (e) { again = e.message; }
           console.log('@@' + JSON.stringify({ fpmath: rep.fpmath, label: rep.label, onednn: process.env.ONEDNN_DEFAULT_FPMATH_MODE, again, ...out }));
         })().catch((e) => console.log('@@' + JSON.stringify({ error: e.message })));`,
        { COPYCAT_FPMATH: mode, ONEDNN_DEFAULT_FPMATH_MODE: '' },
      ),
    );
  const maxRelErr = (got: number[], want: Float64Array) => {
    const scale = Math.max(...Array.from(want, Math.abs));
    return Math.max(...got.map((v, i) => Math.abs(v - want[i]))) / scale;
  };

  it('strict keeps float32 products; bf16 uses bfloat16 products where the CPU has AMX, and says so', function () {
    skipUnlessNative(this);
    const strict = runMode('strict');
    const bf16 = runMode('bf16');
    assert.equal(strict.error, undefined);
    assert.equal(bf16.error, undefined);
    assert.equal(strict.fpmath, 'strict');
    assert.equal(strict.onednn, undefined);
    assert.doesNotMatch(strict.label, /bf16/);
    assert.equal(bf16.fpmath, 'bf16');
    assert.equal(bf16.onednn, 'BF16');
    assert.match(bf16.label, /bf16 math/);
    for (const r of [strict, bf16]) assert.match(r.again ?? '', /already runs with '(strict|bf16)'.*restart the kernel/);
    const want = conv64(strict.xs, strict.ws, 4, 8, 32, 32);
    const eStrict = maxRelErr(strict.y, want);
    const eBf16 = maxRelErr(bf16.y, want);
    assert.ok(eStrict < 1e-5, `strict float32 conv is off by ${eStrict} (relative)`);
    // bfloat16 keeps 8 significant bits: products err by up to ~0.4 %, sums of 288 of them by far less.
    assert.ok(eBf16 < 2e-2, `bf16 conv is off by ${eBf16} (relative)`);
    if (cpuHasAmxBf16()) assert.ok(eBf16 > 10 * eStrict && eBf16 > 1e-4, `this CPU has AMX bf16 units but the bf16 conv is as exact as float32 (${eBf16} vs ${eStrict}): the mode was not applied`);
    // Without AMX oneDNN keeps its float32 kernels (measured on an AVX512-BF16 AMD EPYC): only the label is certain there.
    else assert.match(bf16.label, /no AMX bf16 units/);
  });
});
