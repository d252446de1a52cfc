import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { findTorch, summarise } from '../bench/vsPytorch';
import { createModel, modelSummary } from '../src/models';

/**
 * npm run bench:vs-pytorch (issue 54): the ratio is the kit's median over PyTorch's, a missing torch is a
 * stated skip with the command that adds it (the kit's figures still come out), and, where the project's
 * venv has torch, bench/torch_nets.py trains each of the kit's nets and prints its JSON line.
 */

const ROOT = path.resolve(__dirname, '..');
const VENV_PYTHON = path.join(process.env.COPYCAT_VENV ?? path.join(ROOT, '.venv'), 'bin', 'python');

function bench(args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/ts-node/dist/bin.js'), '--transpile-only', path.join(ROOT, 'bench/vsPytorch.ts'), ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, COPYCAT_PROGRESS: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bench:vs-pytorch', function () {
  this.timeout(300_000);

  it('compares medians, so one slow round on either side does not decide the ratio', () => {
    const rec = summarise('resnet-9', 128,
      [{ trainImgPerSec: 1000, inferImgPerSec: 3000 }, { trainImgPerSec: 200, inferImgPerSec: 3100 }, { trainImgPerSec: 1100, inferImgPerSec: 2900 }],
      [{ trainImgPerSec: 800, inferImgPerSec: 6000 }, { trainImgPerSec: 1000, inferImgPerSec: 6000 }, { trainImgPerSec: 100, inferImgPerSec: 6200 }]);
    assert.equal(rec.trainRatio, 1.25); // 1000 / 800
    assert.equal(rec.inferRatio, 0.5); // 3000 / 6000
    assert.equal(rec.inferFoldedRatio, 0.5); // no folded figure given: the unfolded one stands in
    assert.deepEqual(rec.kit.train, [1000, 200, 1100]);
    const folded = summarise('resnet-9', 128, [{ trainImgPerSec: 1, inferImgPerSec: 3000, inferFoldedImgPerSec: 4500 }], [{ trainImgPerSec: 1, inferImgPerSec: 3000 }]);
    assert.equal(folded.inferRatio, 1);
    assert.equal(folded.inferFoldedRatio, 1.5);
    const alone = summarise('vgg-small', 64, [{ trainImgPerSec: 10, inferImgPerSec: 20 }], null);
    assert.equal(alone.pytorch, null);
    assert.equal(alone.trainRatio, null);
  });

  it('says why PyTorch is skipped and how to add it, and still prints the kit\'s figures', () => {
    const missing = findTorch('/nonexistent/bin/python');
    assert.match(missing.skipped ?? '', /no Python at \/nonexistent\/bin\/python.*pip-install torch/);
    const r = bench(['--arch', 'vgg-small', '--rounds', '1', '--images', '64', '--python', '/nonexistent/bin/python']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0], /^bench:vs-pytorch: PyTorch side skipped: no Python at/);
    const rec = JSON.parse(lines[1]);
    assert.equal(rec.arch, 'vgg-small');
    assert.equal(rec.batch, 64);
    assert.equal(rec.pytorch, null);
    assert.ok(rec.kit.train[0] > 0 && rec.kit.infer[0] > 0 && rec.kit.inferFolded[0] > 0, JSON.stringify(rec.kit));
    assert.ok(rec.versions.libtensorflow === null || /^\d+\.\d+/.test(rec.versions.libtensorflow));
  });

  it('refuses a net that has no PyTorch twin, naming the ones that have', () => {
    const r = bench(['--arch', 'resnet-small', '--python', '/nonexistent/bin/python']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /'resnet-small' has no PyTorch twin.*vgg-small, resnet-9, resnet-9w32, resnet-9w64/);
  });

  it("runs the PyTorch twins, each with its kit net's parameter count, where the project venv has torch", function () {
    if (!fs.existsSync(VENV_PYTHON) || findTorch(VENV_PYTHON).skipped) {
      // Not a pass in disguise: this case needs `bash scripts/jupyter-env.sh pip-install torch`, which CI does not do.
      this.skip();
    }
    for (const arch of ['vgg-small', 'resnet-9']) {
      const r = spawnSync(VENV_PYTHON, [path.join(ROOT, 'bench/torch_nets.py'), '--arch', arch, '--images', '64', '--batch', '32', '--threads', '1'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const rec = JSON.parse(r.stdout.trim());
      assert.equal(rec.arch, arch);
      // The same net: PyTorch's parameter count equals the kit model's trainable one.
      const kit = createModel(arch as 'vgg-small' | 'resnet-9');
      assert.equal(rec.params, modelSummary(kit).trainableParams);
      kit.dispose();
      assert.ok(rec.trainImgPerSec > 0 && rec.inferImgPerSec > 0);
      assert.match(rec.torch, /^\d+\.\d+/);
    }
  });
});
