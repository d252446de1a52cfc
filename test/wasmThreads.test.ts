import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as path from 'path';

/**
 * The threaded-SIMD build in Node (off in tfjs-backend-wasm 4.22) must start, run the training kernels
 * with the same results as cpu, and leave os.cpus() as it was. It runs in a child process: a backend's
 * thread count is fixed once per process.
 */
const CHILD = `
const tf = require('@tensorflow/tfjs');
const os = require('os');
const { prepareWasm, registerWasmTrainingKernels, wasmThreadsInfo } = require('./src/platform/wasm');
(async () => {
  const cores = os.cpus().length;
  await prepareWasm({ threads: 2 });
  registerWasmTrainingKernels();
  const grads = async (be) => {
    await tf.setBackend(be);
    const x = tf.randomNormal([4, 10, 10, 3], 0, 1, 'float32', 1);
    const w = tf.randomNormal([3, 3, 3, 5], 0, 1, 'float32', 2);
    const g = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a, b, 2, 'same'))))([x, w]);
    return Promise.all(g.map((t) => t.data()));
  };
  const w = await grads('wasm');
  const info = wasmThreadsInfo();
  const c = await grads('cpu');
  let err = 0;
  c.forEach((a, i) => { let s = 0; for (let j = 0; j < a.length; j++) { err = Math.max(err, Math.abs(a[j] - w[i][j])); s = Math.max(s, Math.abs(a[j])); } err /= s; });
  console.log('RESULT ' + JSON.stringify({ info, err, coresBefore: cores, coresAfter: os.cpus().length }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('wasm threads in Node', function () {
  this.timeout(60000);

  it('runs the threaded-SIMD build with 2 threads and matches cpu', () => {
    const root = path.resolve(__dirname, '..');
    const r = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', CHILD], {
      cwd: root, encoding: 'utf8', timeout: 45000, env: { ...process.env, COPYCAT_WASM_KERNELS: '1' },
    });
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `child failed (status ${r.status}): ${r.stderr}`);
    const res = JSON.parse(line.slice(7));
    // eslint-disable-next-line no-console
    console.log(`      ${JSON.stringify(res)}`);
    assert.deepEqual(res.info, { threads: 2, simd: true, multithread: true });
    assert.ok(res.err < 1e-4, `max relative error ${res.err}`);
    assert.equal(res.coresAfter, res.coresBefore, 'os.cpus() restored after the backend started');
  });
});
