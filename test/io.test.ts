import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { loadModel, saveModel } from '../src/io';
import { createModel } from '../src/models';
import { tempDir } from './tempDirs';

const tmpDir = (): string => tempDir('copycat-io-');

describe('io', function () {
  this.timeout(30000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  async function savedModel(): Promise<{ model: tf.LayersModel; dir: string; x: tf.Tensor4D }> {
    const model = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 4, seed: 3 });
    // Move the batch-norm moving statistics away from their initial values so they are checked too.
    const x = tf.randomNormal([4, 8, 8, 3], 0.5, 2, 'float32', 11) as tf.Tensor4D;
    for (let i = 0; i < 3; i++) tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor);
    const dir = path.join(tmpDir(), 'oracle');
    await saveModel(model, dir);
    return { model, dir, x };
  }

  it('save -> load round-trip gives identical predictions, in the standard TF.js file layout', async () => {
    const { model, dir, x } = await savedModel();
    assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    const loaded = await loadModel(dir);
    const a = tf.tidy(() => model.predict(x) as tf.Tensor);
    const b = tf.tidy(() => loaded.predict(x) as tf.Tensor);
    assert.deepEqual(await b.data(), await a.data());
    assert.equal(loaded.name, model.name);
    // Standard loaders read it too.
    const viaTfjs = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: new Uint8Array(fs.readFileSync(path.join(dir, 'weights.bin'))).buffer,
    }));
    const c = tf.tidy(() => viaTfjs.predict(x) as tf.Tensor);
    assert.deepEqual(await c.data(), await a.data());
    tf.dispose([a, b, c, x]);
    [model, loaded, viaTfjs].forEach((m) => m.dispose());
  });

  it('overwrites an existing save and leaves no temporary files', async () => {
    const { model, dir, x } = await savedModel();
    const other = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 4, seed: 4 });
    await saveModel(other, dir);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
    const loaded = await loadModel(dir);
    const a = tf.tidy(() => other.predict(x) as tf.Tensor);
    const b = tf.tidy(() => loaded.predict(x) as tf.Tensor);
    assert.deepEqual(await b.data(), await a.data());
    tf.dispose([a, b, x]);
    [model, other, loaded].forEach((m) => m.dispose());
  });

  it('gives clear errors for missing or corrupt files', async () => {
    const { model, dir, x } = await savedModel();
    x.dispose();
    model.dispose();
    await assert.rejects(loadModel(path.join(dir, 'nope')), /model directory .*nope does not exist/);
    const copy = (name: string) => {
      const d = path.join(tmpDir(), name);
      fs.mkdirSync(d);
      for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(d, f));
      return d;
    };
    const noJson = copy('nojson');
    fs.rmSync(path.join(noJson, 'model.json'));
    await assert.rejects(loadModel(noJson), /model\.json is missing/);

    const noBin = copy('nobin');
    fs.rmSync(path.join(noBin, 'weights.bin'));
    await assert.rejects(loadModel(noBin), /weights file .*weights\.bin listed in .*model\.json is missing/);

    const badJson = copy('badjson');
    fs.writeFileSync(path.join(badJson, 'model.json'), '{"modelTopology": ');
    await assert.rejects(loadModel(badJson), /model\.json is not valid JSON/);

    const truncated = copy('truncated');
    const bin = fs.readFileSync(path.join(truncated, 'weights.bin'));
    fs.writeFileSync(path.join(truncated, 'weights.bin'), bin.subarray(0, bin.length - 8));
    await assert.rejects(loadModel(truncated), /have \d+ bytes but model\.json describes \d+/);

    const flipped = copy('flipped');
    const bytes = fs.readFileSync(path.join(flipped, 'weights.bin'));
    bytes[100] ^= 0xff;
    fs.writeFileSync(path.join(flipped, 'weights.bin'), bytes);
    await assert.rejects(loadModel(flipped), /does not match the SHA-256 recorded in model\.json/);
  });

  it('does not leak tensors across save/load', async () => {
    const model = createModel('resnet-8', { inputShape: [8, 8, 3], numClasses: 4, seed: 3 });
    const dir = tmpDir();
    await saveModel(model, dir);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await saveModel(model, dir);
      (await loadModel(dir)).dispose();
    }
    assert.equal(tf.memory().numTensors, start);
    model.dispose();
  });
});
