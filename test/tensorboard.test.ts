import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { flattenHParams } from '../src/train/tensorboard';
import { childResult, ROOT, runChild, skipUnlessNative } from './nativeChild';
import { tempDir } from './tempDirs';

/**
 * TensorBoard summaries (src/train/tensorboard.ts). Event files need the native backend, so those checks
 * run in a child process (tfjs-node would otherwise become this process's backend, see nativeChild.ts);
 * reading them back needs the project venv's tensorboard (scripts/jupyter-env.sh), skipped with a reason
 * without it unless COPYCAT_REQUIRE_JUPYTER=1.
 */

const VENV = process.env.COPYCAT_VENV ?? path.join(ROOT, '.venv');
const HPARAMS = { step: 'copycat', lr: 0.05, settings: { epochs: 2, augment: true, arch: 'vgg16' }, seeds: [1, 2], none: null };
const EPOCH = (epoch: number, val = true) => ({
  epoch, learningRate: 0.1 / epoch, loss: 2 / epoch, accuracy: 0.2 * epoch, seconds: 1.25, imagesPerSecond: 800 + epoch,
  ...(val ? { valLoss: 2.2 / epoch, valAccuracy: 0.15 * epoch } : {}),
});

describe('TensorBoard epoch summaries', function () {
  this.timeout(120_000);

  it('flattens nested hyper-parameters to dotted names, arrays as JSON, null left out', () => {
    assert.deepEqual(flattenHParams(HPARAMS), {
      step: 'copycat', lr: 0.05, 'settings.epochs': 2, 'settings.augment': true, 'settings.arch': 'vgg16', seeds: '[1,2]',
    });
  });

  it('is a no-op without a folder on a non-native backend, and says why once', () => {
    const dir = path.join(tempDir('cc-tb-noop-'), 'tb');
    const r = runChild(`
      const tf = require('@tensorflow/tfjs');
      (async () => {
        await tf.setBackend('cpu');
        const { epochSummaries } = require('./src/train/tensorboard');
        const lines = [];
        const a = epochSummaries(${JSON.stringify(dir)}, { lr: 1 }, { log: (s) => lines.push(s) });
        const b = epochSummaries(${JSON.stringify(dir)}, { lr: 1 }, { log: (s) => lines.push(s) });
        a.onEpoch(${JSON.stringify(EPOCH(1))}); a.close(); b.close();
        console.log('@@' + JSON.stringify({ dirs: [a.dir ?? null, b.dir ?? null], lines }));
      })().catch((e) => console.log('@@' + JSON.stringify({ error: e.message })));`);
    const got = childResult<{ error?: string; dirs: (string | null)[]; lines: string[] }>(r);
    assert.equal(got.error, undefined, got.error);
    assert.deepEqual(got.dirs, [null, null]);
    assert.equal(got.lines.length, 1, got.lines.join('\n'));
    assert.match(got.lines[0], /no event files are written: the 'cpu' backend has no TensorFlow summary ops/);
    assert.equal(fs.existsSync(dir), false, 'nothing written on a non-native backend');
  });

  describe('on the native backend', () => {
    let root = '';
    let got: {
      error?: string;
      dir: string;
      sizes: number[];
      files: string[];
      filesAfterResume: string[];
      tensorsBefore: number;
      tensorsAfter: number;
      nativeBefore: number;
      nativeAfter: number;
      openBefore: number | null;
      openAfter: number | null;
    };

    before(function () {
      skipUnlessNative(this);
      root = tempDir('cc-tb-');
      // Two epochs (size after each flush), closed; then a "resumed" training appends epoch 3 to the same
      // folder; then a training without a test set in another folder (check-events must reject it).
      const r = runChild(`
        const b = require('./src/platform/backend');
        const tf = require('@tensorflow/tfjs');
        const fs = require('fs');
        const path = require('path');
        (async () => {
          await b.initBackend({ prefer: 'tensorflow', quiet: true });
          const { epochSummaries } = require('./src/train/tensorboard');
          const dir = path.join(${JSON.stringify(root)}, 'run', 'copycat', 'tensorboard');
          const events = () => fs.readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.')).sort();
          const size = () => events().reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
          const native = () => tf.backend().binding.getNumOfTensors();
          // Files of the folder this process holds open (Linux), to see close() close the event file.
          const openIn = (d) => fs.existsSync('/proc/self/fd')
            ? fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } }).filter((p) => p.startsWith(d + path.sep)).length
            : null;
          const log = (s) => console.error(s);
          // Warm-up in another folder: the first ops of a process may allocate kernel-level state.
          const w0 = epochSummaries(path.join(${JSON.stringify(root)}, 'warmup'), {}, { log }); w0.onEpoch(${JSON.stringify(EPOCH(1))}); w0.close();
          const tensorsBefore = tf.memory().numTensors, nativeBefore = native();
          const w = epochSummaries(dir, ${JSON.stringify(HPARAMS)}, { log });
          const sizes = [];
          w.onEpoch(${JSON.stringify(EPOCH(1))}); sizes.push(size());
          w.onEpoch(${JSON.stringify(EPOCH(2))}); sizes.push(size());
          const openBefore = openIn(dir);
          w.close();
          const openAfter = openIn(dir);
          const files = events();
          const again = epochSummaries(dir, ${JSON.stringify(HPARAMS)}, { log });
          again.onEpoch(${JSON.stringify(EPOCH(3))}); again.close();
          const tensorsAfter = tf.memory().numTensors, nativeAfter = native();
          const noTest = epochSummaries(path.join(${JSON.stringify(root)}, 'run', 'no-test'), {}, { log });
          noTest.onEpoch(${JSON.stringify(EPOCH(1, false))}); noTest.close();
          console.log('@@' + JSON.stringify({ dir: w.dir, sizes, openBefore, openAfter, files, filesAfterResume: events(), tensorsBefore, tensorsAfter, nativeBefore, nativeAfter }));
        })().catch((e) => console.log('@@' + JSON.stringify({ error: e.stack })));`);
      got = childResult(r);
      assert.equal(got.error, undefined, `${got.error}\n${r.stderr}`);
    });

    it('writes an event file that grows with every epoch (flushed each epoch)', () => {
      assert.equal(got.dir, path.join(root, 'run', 'copycat', 'tensorboard'));
      assert.equal(got.files.length, 1, got.files.join(', '));
      assert.ok(got.sizes[0] > 0 && got.sizes[1] > got.sizes[0], `sizes ${got.sizes}`);
    });

    it('keeps the hyper-parameters as hparams.json beside the events', () => {
      assert.deepEqual(JSON.parse(fs.readFileSync(path.join(got.dir, 'hparams.json'), 'utf8')), HPARAMS);
    });

    it('leaks no tensor, neither TF.js nor native, once closed', () => {
      assert.equal(got.tensorsAfter, got.tensorsBefore, 'tf.memory().numTensors');
      assert.equal(got.nativeAfter, got.nativeBefore, 'native TF_Tensor handles');
    });

    it('closes the event file on close()', function () {
      if (got.openBefore === null) this.skip(); // no /proc/self/fd to look at
      assert.equal(got.openBefore, 1, 'the event file is open while training');
      assert.equal(got.openAfter, 0, 'and closed after close()');
    });

    it('appends a resumed training as a second file in the same folder', () => {
      assert.equal(got.filesAfterResume.length, 2, got.filesAfterResume.join(', '));
    });

    describe('read back by TensorBoard (project venv)', () => {
      const python = path.join(VENV, 'bin', 'python');

      before(function () {
        const has = fs.existsSync(python) && spawnSync(python, ['-c', 'import tensorboard'], { encoding: 'utf8' }).status === 0;
        if (!has) {
          const why = `no tensorboard in the venv at ${VENV} (run 'npm run lab:setup')`;
          if (process.env.COPYCAT_REQUIRE_JUPYTER === '1') throw new Error(`COPYCAT_REQUIRE_JUPYTER=1 but ${why}`);
          console.log(`      SKIPPED TensorBoard read-back tests: ${why}`);
          this.skip();
        }
      });

      function checkEvents(dir: string) {
        // Through jupyter-env.sh as CI runs it, with its kernelspec written to a temp prefix, not the project's.
        return spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'python', path.join(ROOT, 'scripts/check-events.py'), dir], {
          cwd: ROOT, encoding: 'utf8', env: { ...process.env, COPYCAT_JUPYTER_DIR: path.join(root, 'jupyter') },
        });
      }

      it('check-events.py accepts the epochs, resumed file included (steps 1..3)', () => {
        const r = checkEvents(got.dir);
        assert.equal(r.status, 0, r.stdout + r.stderr);
        assert.match(r.stdout, /^ok {3}\.: 3 epoch\(s\), 7 scalar tag\(s\), final test\/accuracy 0\.4500$/m);
        assert.match(r.stdout, /check-events: 1\/1 folder/);
      });

      it('check-events.py fails naming the folder and the missing tag, and on a folder without event files', () => {
        const r = checkEvents(path.join(root, 'run'));
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /^FAIL no-test \(events\.out\.tfevents\.[^)]+\): missing test\/accuracy$/m);
        assert.match(r.stdout, /^ok {3}copycat\/tensorboard: 3 epoch/m);
        const empty = tempDir('cc-tb-empty-');
        const e = checkEvents(empty);
        assert.equal(e.status, 1, e.stdout + e.stderr);
        assert.match(e.stderr, /FAIL no events\.out\.tfevents\.\* file under/);
      });

      it('TensorBoard sees the tags, the hyper-parameters as text and as one hparams session', () => {
        const script = String.raw`
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util
acc = EventAccumulator(sys.argv[1]); acc.Reload()
tags = acc.Tags()
start = plugin_data_pb2.HParamsPluginData.FromString(acc.SummaryMetadata('_hparams_/session_start_info').plugin_data.content).session_start_info
hp = {k: getattr(v, v.WhichOneof('kind')) for k, v in start.hparams.items()}
text = tensor_util.make_ndarray(acc.Tensors('hparams')[0].tensor_proto).item().decode()
print(json.dumps({'scalars': sorted(tags['scalars']), 'tensors': sorted(tags['tensors']), 'sessions': len(acc.Tensors('_hparams_/session_start_info')),
  'textPlugin': acc.SummaryMetadata('hparams').plugin_data.plugin_name, 'hp': hp, 'text': text,
  'lr': [[e.step, round(e.value, 6)] for e in acc.Scalars('learning_rate')]}))`;
        const r = spawnSync(python, ['-c', script, got.dir], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const seen = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
          scalars: string[]; tensors: string[]; sessions: number; textPlugin: string; hp: Record<string, unknown>; text: string; lr: number[][];
        };
        assert.deepEqual(seen.scalars, ['learning_rate', 'test/accuracy', 'test/loss', 'throughput/epoch_seconds', 'throughput/images_per_second', 'train/accuracy', 'train/loss']);
        assert.deepEqual(seen.tensors, ['_hparams_/session_start_info', 'hparams']);
        assert.equal(seen.sessions, 1, 'the resumed training does not start a second session (a step back to 0 would discard epochs 1-2)');
        assert.equal(seen.textPlugin, 'text');
        assert.deepEqual(seen.hp, { step: 'copycat', lr: 0.05, 'settings.epochs': 2, 'settings.augment': true, 'settings.arch': 'vgg16', seeds: '[1,2]' });
        assert.match(seen.text, /^\| hyper-parameter \| value \|\n\|---\|---\|\n\| lr \| 0\.05 \|/);
        assert.deepEqual(seen.lr, [[1, 0.1], [2, 0.05], [3, 0.033333]]);
      });
    });
  });
});
