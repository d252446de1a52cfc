import * as tf from '@tensorflow/tfjs';

/**
 * Loaded by mocha before the test files (.mocharc.json "require").
 *
 * Many tests pick tfjs's pure-JS 'cpu' backend on purpose (small, deterministic, no native build needed).
 * Its first tensor write prints "Hi, looks like you are running TensorFlow.js in Node.js... install our node
 * backend" whenever IS_NODE holds (tfjs-backend-cpu MathBackendCPU.write, guarded by an instance flag
 * `firstUse`), even when the native backend is installed and used by the other tests: noise in every
 * `npm test`. Clearing that one flag silences exactly this banner. Not `IS_TEST`: that flag mutes all of
 * tfjs's warnings and switches on per-kernel leak checks, which would change what the tests measure.
 */
const cpu = tf.findBackend('cpu') as (tf.KernelBackend & { firstUse?: boolean }) | null;
if (cpu && typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
