import { strict as assert } from 'assert';
import * as tf from '@tensorflow/tfjs';
import { train, TrainConfig } from '../src/train';
import { epochDeadline, parseDeadline } from '../src/train/deadline';
import { tempDir } from './tempDirs';
import { tinySet, tiny } from './trainFixtures';

const minute = 60000;
const t0 = Date.parse('2026-12-05T23:00:00Z');

describe('stop before a deadline', () => {
  it('reads a time from now or a date-time with its zone, and names what it cannot read', () => {
    assert.equal(parseDeadline('90m', t0).getTime(), t0 + 90 * minute);
    assert.equal(parseDeadline('2h', t0).getTime(), t0 + 120 * minute);
    assert.equal(parseDeadline('1h30m', t0).getTime(), t0 + 90 * minute);
    assert.equal(parseDeadline('1.5h', t0).getTime(), t0 + 90 * minute);
    assert.equal(parseDeadline('2026-12-06T01:55Z', t0).toISOString(), '2026-12-06T01:55:00.000Z');
    assert.equal(parseDeadline('2026-12-06T02:55:30+01:00', t0).toISOString(), '2026-12-06T01:55:30.000Z');
    // Without a zone the same text would mean another instant on another machine.
    for (const bad of ['2026-12-06T01:55', 'tomorrow', '', '0m', '90', '-5m']) {
      assert.throws(() => parseDeadline(bad, t0), (e: Error) => /--stop-before: expected/.test(e.message) && e.message.includes(`'${bad}'`), bad);
    }
    assert.throws(() => parseDeadline('2026-12-05T22:59Z', t0), /--stop-before: 2026-12-05T22:59:00.000Z has already passed/);
  });

  it('aborts after the last epoch whose successor would end after the deadline, judged by the longest epoch', () => {
    let now = t0;
    const d = epochDeadline(new Date(t0 + 40 * minute), () => now);
    const aborted: boolean[] = [];
    for (const length of [8, 12, 5, 5]) {
      now += length * minute;
      d.onEpoch();
      aborted.push(d.signal.aborted);
    }
    // After 8 min the next (8 min) ends at 16; after 20 min the next (12 min, the longest) at 32; after 25 at 37,
    // all by 40; after 30 min at 42: stop, although the last epoch took only 5 min.
    assert.deepEqual(aborted, [false, false, false, true]);
    assert.match(d.reason() ?? '', /about 12m00s, the longest so far\) would end after 2026-12-05T23:40:00.000Z/);
  });

  it('ends train() on the checkpoint of the last epoch that fit, and the same call resumes it', async function () {
    this.timeout(60000);
    await tf.setBackend('cpu');
    const cfg: Partial<TrainConfig> = {
      epochs: 4, batchSize: 16, optimizer: 'sgd', learningRate: 0.02, schedule: { kind: 'constant' },
      augmentation: { crop: true, flip: true, pad: 2 }, seed: 3,
    };
    const data = tinySet(32);
    const dir = tempDir('copycat-deadline-');
    const model = tiny();
    // A clock that advances 10 min per epoch: the third epoch would end at 30 min, after the 25-min deadline.
    let now = t0;
    const d = epochDeadline(new Date(t0 + 25 * minute), () => now);
    const before = tf.memory().numTensors;
    await assert.rejects(
      train(model, data, cfg, { log: false, checkpointDir: dir, signal: d.signal, onEpoch: () => { now += 10 * minute; d.onEpoch(); } }),
      (e: Error) => e.name === 'AbortError' && /epoch 3, batch 1/.test(e.message) && /holds 2 finished epoch/.test(e.message),
    );
    assert.equal(tf.memory().numTensors, before, 'tensors leaked by the stopped run');
    const r = await train(model, data, cfg, { log: false, checkpointDir: dir });
    assert.equal(r.resumedFromEpoch, 2);
    assert.deepEqual(r.history.map((e) => e.epoch), [1, 2, 3, 4]);
    model.dispose();
  });
});
