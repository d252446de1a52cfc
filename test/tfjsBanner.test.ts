import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';

/** test/setup.ts mutes tfjs's "install our node backend" banner, and nothing else. */
describe('test bootstrap: tfjs cpu banner', () => {
  // Put back whatever an earlier test file chose (getBackend() is undefined before any choice).
  let backend: string | undefined;
  before(() => {
    backend = tf.getBackend();
  });
  after(async () => {
    if (backend) await tf.setBackend(backend);
  });

  function warnings(fn: () => void): string[] {
    const seen: string[] = [];
    const orig = console.warn;
    console.warn = (...a: unknown[]) => seen.push(a.join(' '));
    try {
      fn();
    } finally {
      console.warn = orig;
    }
    return seen;
  }

  it('the pure-JS backend writes tensors without the banner', async () => {
    await tf.setBackend('cpu');
    const seen = warnings(() => tf.tidy(() => tf.tensor1d([1, 2, 3]).sum().dataSync()));
    assert.deepEqual(seen.filter((w) => /looks like you are running TensorFlow\.js in Node\.js/.test(w)), []);
    // If a tfjs upgrade renames the flag, setup.ts does nothing: fail here rather than print again.
    assert.equal((tf.findBackend('cpu') as unknown as { firstUse?: boolean }).firstUse, false);
  });

  it('other tfjs warnings still print (IS_TEST and PROD stay off)', () => {
    assert.equal(tf.env().getBool('IS_TEST'), false);
    assert.equal(tf.env().getBool('PROD'), false);
    const seen = warnings(() => tf.backend_util.warn('a real warning'));
    assert.deepEqual(seen, ['a real warning']);
  });
});
