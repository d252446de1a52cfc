import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { archivable, archiveRun, MANIFEST, readManifest, restoreRun, slimArchive } from '../src/run/archive';
import { tempDir } from './tempDirs';

/** A run directory shaped like a real one: a finished oracle and member, one member still training. */
function fakeRun(): string {
  const dir = tempDir('archive-run-');
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  put('config.json', '{"profile":"full"}\n');
  put('config.prev-1700000000000.json', '{}');
  put('oracle/model/model.json', '{"oracle":1}');
  put('oracle/model/weights.bin', 'ORACLEWEIGHTS');
  put('oracle/result.json', '{"metrics":{}}');
  put('oracle/checkpoints/latest.json', '{"epoch":26,"dir":"epoch-0026"}');
  put('oracle/checkpoints/epoch-0026/optimizer.bin', 'OPT');
  put('stolen/queries.jsonl', '{"h":"ab","a":1}\n'.repeat(50));
  put('stolen/NPD-SL.json', '{"labels":[1,2]}');
  put('stolen/PD-SL.json', JSON.stringify({ labels: new Array(40000).fill(3) }));
  put('experiments/members/g/recipe.json', '{}');
  put('experiments/members/g/s1/model/model.json', '{"s1":1}');
  put('experiments/members/g/s1/result.json', '{}');
  put('experiments/members/g/s1/checkpoints/latest.json', '{"epoch":22}');
  put('experiments/members/g/s2/checkpoints/latest.json', '{"epoch":6,"dir":"epoch-0006"}');
  put('experiments/members/g/s2/checkpoints/epoch-0006/optimizer.bin', 'S2OPT');
  put('experiments/ensembles/w48s1s2-flip.json', '{}');
  put('experiments/ensembles/view-probabilities/0123abcd.f32', 'PROBS');
  put('train.log', 'noise');
  put('experiments/members/g/s2/checkpoints/epoch-0007.tmp-123-456/state.json', '{}');
  put('stolen/NPD-SL.json.tmp-123-456', 'half');
  return dir;
}

describe('run archive', () => {
  it('keeps finished models and the checkpoint of an unfinished one, not logs, dead checkpoints or cached probabilities', () => {
    const run = fakeRun();
    const out = path.join(tempDir('archive-out-'), 'full-1');
    const m = archiveRun(run, out);
    const paths = m.files.map((f) => f.path);
    assert.deepEqual(paths.sort(), [
      'config.json',
      'experiments/ensembles/w48s1s2-flip.json',
      'experiments/members/g/recipe.json',
      'experiments/members/g/s1/model/model.json',
      'experiments/members/g/s1/result.json',
      'experiments/members/g/s2/checkpoints/epoch-0006/optimizer.bin',
      'experiments/members/g/s2/checkpoints/latest.json',
      'oracle/model/model.json',
      'oracle/model/weights.bin',
      'oracle/result.json',
      'stolen/NPD-SL.json',
      'stolen/PD-SL.json',
      'stolen/queries.jsonl',
    ]);
    // The query cache and large JSON files are stored compressed, small JSON as it is.
    assert.ok(fs.existsSync(path.join(out, 'stolen/queries.jsonl.gz')));
    assert.ok(fs.existsSync(path.join(out, 'stolen/PD-SL.json.gz')) && !fs.existsSync(path.join(out, 'stolen/PD-SL.json')));
    assert.ok(fs.existsSync(path.join(out, 'stolen/NPD-SL.json')));
    assert.ok(fs.statSync(path.join(out, 'stolen/queries.jsonl.gz')).size < 850 / 4);
    assert.equal(archivable(run, 'oracle/checkpoints/latest.json'), false);
    assert.equal(archivable(run, 'notebooks/03_copycat.ipynb'), false, 'executed notebooks are output, not archived');
    assert.equal(readManifest(out).files.length, 13);
    const lean = tempDir('archive-lean-');
    archiveRun(run, lean, () => undefined, (rel) => !rel.endsWith('.jsonl'));
    assert.ok(!readManifest(lean).files.some((f) => f.path === 'stolen/queries.jsonl'), 'pack --exclude leaves the cache out');
    assert.equal(readManifest(lean).files.length, 12);
  });

  it('restores byte for byte, leaves identical files alone and is repeatable', () => {
    const run = fakeRun();
    const out = tempDir('archive-out-');
    archiveRun(run, out);
    const again = tempDir('archive-restored-');
    const first = restoreRun(out, again);
    assert.deepEqual(first, { written: 13, unchanged: 0 });
    for (const rel of ['stolen/queries.jsonl', 'stolen/PD-SL.json', 'oracle/model/weights.bin', 'experiments/members/g/s2/checkpoints/epoch-0006/optimizer.bin']) {
      assert.deepEqual(fs.readFileSync(path.join(again, rel)), fs.readFileSync(path.join(run, rel)), rel);
    }
    assert.deepEqual(restoreRun(out, again), { written: 0, unchanged: 13 });
    // Packing the same run twice gives the same bytes (gzip without a timestamp), so git sees no change.
    const gz = fs.readFileSync(path.join(out, 'stolen/queries.jsonl.gz'));
    archiveRun(run, out);
    assert.deepEqual(fs.readFileSync(path.join(out, 'stolen/queries.jsonl.gz')), gz);
  });

  it('refuses to overwrite a run that differs, and names corrupt or missing archive files', () => {
    const run = fakeRun();
    const out = tempDir('archive-out-');
    archiveRun(run, out);
    const target = tempDir('archive-target-');
    fs.mkdirSync(path.join(target, 'oracle/model'), { recursive: true });
    fs.writeFileSync(path.join(target, 'oracle/model/weights.bin'), 'OTHER');
    assert.throws(() => restoreRun(out, target), /already holds other versions of 1 archived file\(s\), e\.g\. oracle\/model\/weights\.bin/);
    assert.equal(fs.readFileSync(path.join(target, 'oracle/model/weights.bin'), 'utf8'), 'OTHER');
    assert.ok(!fs.existsSync(path.join(target, 'oracle/result.json')), 'nothing is written when a conflict is found');

    fs.writeFileSync(path.join(out, 'stolen/NPD-SL.json'), '{"labels":[9,9]}');
    assert.throws(() => restoreRun(out, tempDir('archive-target-')), /stolen\/NPD-SL\.json is corrupt: MD5 [0-9a-f]{32}, archive\.json expects [0-9a-f]{32}/);
    fs.rmSync(path.join(out, 'stolen/NPD-SL.json'));
    assert.throws(() => restoreRun(out, tempDir('archive-target-')), /stolen\/NPD-SL\.json is missing from the archive/);
    assert.throws(() => restoreRun(tempDir('archive-empty-'), run), new RegExp(`${MANIFEST} not found: not a run archive`));
    assert.throws(() => archiveRun(tempDir('archive-norun-'), out), /is not a run directory \(no config\.json\)/);
  });

  it('drops files of an earlier archive that the run no longer has (a checkpoint replaced by the model)', () => {
    const run = fakeRun();
    const out = tempDir('archive-out-');
    archiveRun(run, out);
    fs.mkdirSync(path.join(run, 'experiments/members/g/s2/model'), { recursive: true });
    fs.writeFileSync(path.join(run, 'experiments/members/g/s2/model/model.json'), '{"s2":1}');
    const m = archiveRun(run, out);
    assert.ok(m.files.some((f) => f.path === 'experiments/members/g/s2/model/model.json'));
    assert.ok(!fs.existsSync(path.join(out, 'experiments/members/g/s2/checkpoints/latest.json')));
    assert.ok(!fs.existsSync(path.join(out, 'experiments/members/g/s2/checkpoints')), 'emptied folders go too');
  });

  it('keeps heavy files in git history only and restores them from the commit archive.json names, MD5-checked', () => {
    const repo = tempDir('archive-repo-');
    const git = (...args: string[]) => {
      const r = spawnSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd: repo, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.trim();
    };
    git('init', '-q');
    const run = fakeRun();
    const out = path.join(repo, 'reference', 'full-1');
    archiveRun(run, out);
    git('add', '-A');
    git('commit', '-q', '-m', 'archive');
    const commit = git('rev-parse', 'HEAD');
    const gone = slimArchive(out, (rel) => rel === 'config.json' || rel.startsWith('oracle/') || rel.startsWith('stolen/'), commit);
    assert.deepEqual(gone.sort(), ['experiments/ensembles/w48s1s2-flip.json', 'experiments/members/g/recipe.json', 'experiments/members/g/s1/model/model.json',
      'experiments/members/g/s1/result.json', 'experiments/members/g/s2/checkpoints/epoch-0006/optimizer.bin', 'experiments/members/g/s2/checkpoints/latest.json']);
    assert.ok(!fs.existsSync(path.join(out, 'experiments')), 'the members left the tree');
    assert.equal(readManifest(out).history?.commit, commit);
    git('add', '-A');
    git('commit', '-q', '-m', 'slim');

    const target = tempDir('archive-from-history-');
    assert.deepEqual(restoreRun(out, target), { written: 13, unchanged: 0 });
    assert.deepEqual(fs.readFileSync(path.join(target, 'experiments/members/g/s1/model/model.json'), 'utf8'), '{"s1":1}');
    // Packing the run again leaves what history holds in history.
    archiveRun(run, out);
    assert.ok(!fs.existsSync(path.join(out, 'experiments')));
    assert.equal(readManifest(out).files.filter((f) => f.inHistory).length, 6);

    // A manifest whose MD5 does not match the bytes in history is refused, naming the commit.
    const m = readManifest(out);
    m.files.find((f) => f.path === 'experiments/members/g/recipe.json')!.md5 = '0'.repeat(32);
    fs.writeFileSync(path.join(out, MANIFEST), JSON.stringify(m));
    assert.throws(() => restoreRun(out, tempDir('archive-bad-')), new RegExp(`recipe\\.json \\(from commit ${commit}\\) is corrupt`));
    m.history = { commit: '1'.repeat(40) };
    fs.writeFileSync(path.join(out, MANIFEST), JSON.stringify(m));
    assert.throws(() => restoreRun(out, tempDir('archive-bad-')), /git has no reference\/full-1\/experiments\/.* at commit 1{40}/);
  });
});
