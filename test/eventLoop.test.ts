import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { predictProbabilities } from '../src/preprocess';
import { train } from '../src/train';
import { randomImages, tinyModel } from './oracleFixtures';

/**
 * Long loops give the event loop a turn per batch: without it a notebook kernel's output (progress,
 * epoch lines) queues until the cell ends, and timers and signal handlers wait for the whole training.
 */

/** Counts event-loop turns (setImmediate callbacks) while `work` runs. */
async function turnsDuring(work: () => Promise<unknown>): Promise<number> {
  let turns = 0;
  let running = true;
  const tick = (): void => {
    turns++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  // The counting stops in the microtask right after the work resolves, before any further turn.
  await work().finally(() => (running = false));
  return turns;
}

describe('event loop during long loops', () => {
  const set = randomImages(40, 8, 'loop');
  set.labels = Uint8Array.from({ length: 40 }, (_, i) => i % 10);

  it('predictProbabilities lets the event loop run between batches', async () => {
    const model = tinyModel(8);
    try {
      const turns = await turnsDuring(() => predictProbabilities(model, set, 4));
      assert.ok(turns >= 9, `10 batches should give about 10 turns, got ${turns}`);
    } finally {
      model.dispose();
    }
  });

  it('train lets the event loop run between batches, and a timer fires before the first epoch ends', async () => {
    const model = tinyModel(8);
    let fired = false;
    let firedBeforeEpochEnd: boolean | undefined;
    const timer = setTimeout(() => (fired = true), 0);
    try {
      const before = tf.memory().numTensors;
      const turns = await turnsDuring(() => train(model, set, { epochs: 1, batchSize: 4, optimizer: 'sgd', learningRate: 0.01, augmentation: { crop: false, flip: false } }, {
        log: false,
        onEpoch: () => void (firedBeforeEpochEnd ??= fired),
      }));
      assert.ok(turns >= 9, `10 batches should give about 10 turns, got ${turns}`);
      assert.equal(firedBeforeEpochEnd, true);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      clearTimeout(timer);
      model.dispose();
    }
  });
});
