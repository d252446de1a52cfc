import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { tmpDir } from './oracleFixtures';
import { npdFolder, tinyOverrides } from './stepFixtures';

/**
 * `npm run experiment` as a user runs it (a child process): options are checked per experiment before
 * anything trains, and the seed-members experiment reuses finished members and their cached test-set
 * probabilities, stops at --stop-before on a checkpoint (exit 75) and resumes from it.
 */

const ROOT = path.resolve(__dirname, '..');

function experiment(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/ts-node/dist/bin.js'), '--transpile-only', path.join(ROOT, 'scripts/experiment.ts'), ...args], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, COPYCAT_PROGRESS: '', ...env },
  });
  return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
}

describe('experiment command', function () {
  this.timeout(600_000);

  it('checks each experiment\'s own options before training anything', () => {
    const none = experiment(['members', '--run-dir', tmpDir('exp-none')]);
    assert.equal(none.code, 1);
    assert.match(none.out, /members: --seeds is required/);
    const foreign = experiment(['pipeline', '--seeds', '1-2']);
    assert.equal(foreign.code, 1);
    assert.match(foreign.out, /Unknown option '--seeds'/);
    const unknown = experiment(['nope']);
    assert.match(unknown.out, /expected one of oracle\|pipeline\|budget\|budget-modes\|defences\|detect\|verify\|ensemble\|members\|distil/);
    assert.match(experiment(['--help']).out, /members --run-dir D --seeds 1-3/);
  });

  it('detect: every attack and honest stream gets a row per detector, and the monitor\'s cost is measured through the server', async () => {
    const dir = tmpDir('exp-detect');
    const env = { COPYCAT_OVERRIDES: JSON.stringify(tinyOverrides(await npdFolder(96, 'detect-npd'))) };
    const r = experiment(['detect', '--profile', 'smoke', '--run-dir', dir, '--queries', '120', '--keys', '3', '--cost-requests', '4'], env);
    assert.equal(r.code, 0, r.out);
    const rows = r.out.split('\n').filter((l) => l.startsWith('{"experiment":"detect"')).map((l) => JSON.parse(l));
    assert.equal(rows.length, 3 * 6, 'three detectors x (three attacks + honest from one key, all test images, and from three keys)');
    // 128 test images: half calibrate the confidence watch, the other 64 are the honest stream.
    assert.deepEqual(rows.slice(0, 6).map((x) => [x.kind, x.queries]), [['attack', 96], ['attack', 120], ['attack', 120], ['honest', 64], ['honest', 120], ['honest', 63]]);
    const cost = r.out.split('\n').filter((l) => l.startsWith('{"experiment":"detect-cost"')).map((l) => JSON.parse(l));
    assert.equal(cost.length, 3);
    assert.ok(cost.every((c) => c.offMs > 0 && c.onMs > 0), JSON.stringify(cost));
    assert.ok(fs.existsSync(path.join(dir, 'experiments', 'detection', 'results.json')));
  });

  it('verify: scores the run\'s copycats and independent models on each fingerprint, with an AUC per query count; the owner\'s models are kept', async () => {
    const dir = tmpDir('exp-verify');
    const env = { COPYCAT_OVERRIDES: JSON.stringify(tinyOverrides(await npdFolder(96, 'verify-npd'), 1, { dir: await npdFolder(40, 'verify-pool'), heldOutImages: 8 })) };
    assert.equal(experiment(['pipeline', '--profile', 'smoke', '--run-dir', dir, '--sets', 'NPD-SL'], env).code, 0);
    const args = ['verify', '--profile', 'smoke', '--run-dir', dir, '--negatives', 'resnet-small:2', '--references', 'resnet-small:21', '--surrogates', '31', '--negative-epochs', '1', '--queries', '10,20'];
    const clash = experiment([...args.slice(0, 7), '--references', 'resnet-small:2'], env);
    assert.equal(clash.code, 1);
    assert.match(clash.out, /resnet-small seed 2 is both a reference \(--references\) and a negative/);
    const r = experiment(args, env);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /owner's surrogate copy \(seed 31\)/);
    const models = r.out.split('\n').filter((l) => l.startsWith('{"experiment":"verify"')).map((l) => JSON.parse(l));
    assert.deepEqual(models.map((m) => m.kind), ['copy', 'independent'], 'the owner\'s reference and surrogate are not scored');
    assert.deepEqual(Object.keys(models[0].scores.adversarial), ['10', '20']);
    assert.ok(models[0].scores.conferrable['10'] !== undefined, JSON.stringify(models[0].scores));
    const auc = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{"experiment":"verify-auc"'))!);
    assert.ok([0, 0.5, 1].includes(auc.auc.adversarial['20']), JSON.stringify(auc));
    assert.ok([0, 0.5, 1].includes(auc.auc.conferrable['10']), JSON.stringify(auc));
    assert.deepEqual(auc.owner.references.map((m: { name: string }) => m.name), ['resnet-small seed 21']);
    // The pool's training images: the 40 extra ones less the 8 held out (all 96 NPD images were bought).
    assert.equal(auc.owner.surrogates[0].images, 32);
    const again = experiment(args, env);
    assert.equal(again.code, 0, again.out);
    assert.doesNotMatch(again.out, /training an independent|surrogate copy \(seed/, 'the independent, reference and surrogate models are kept and reused');
  });

  it('budget: the curve\'s points are keyed variants at equal steps; a rerun reuses them', async () => {
    const dir = tmpDir('exp-budget');
    const base = tinyOverrides(await npdFolder(96, 'budget-npd'), 1, { dir: await npdFolder(40, 'budget-pool'), heldOutImages: 8 });
    const env = { COPYCAT_OVERRIDES: JSON.stringify(base) };
    const args = ['budget', '--profile', 'smoke', '--run-dir', dir, '--budgets', '32,96', '--methods', 'random,semi', '--steps', '2'];
    const bad = experiment([...args.slice(0, 5), '--methods', 'random,clever']);
    assert.match(bad.out, /--methods: unknown method\(s\) clever/);
    const first = experiment(args, env);
    assert.equal(first.code, 0, first.out);
    const points = first.out.split('\n').filter((l) => l.startsWith('{"experiment":"budget"')).map((l) => JSON.parse(l));
    assert.deepEqual(points.map((p) => [p.budget, p.method, p.queries, p.epochs]), [[32, 'random', 32, 2], [32, 'semi', 32, 2], [96, 'random', 96, 1], [96, 'semi', 96, 1]]);
    assert.deepEqual(points.map((p) => p.poolImages), [0, 32 + 64, 0, 32], 'semi learns from the pool: the extra folder, and the NPD images not bought');
    assert.ok(points.every((p) => p.unseenNpdAgreement !== null), 'every copy is scored on the held-out NPD images');
    const again = experiment(args, env);
    assert.equal(again.code, 0, again.out);
    assert.equal((again.out.match(/copycat NPD-SL: reused/g) ?? []).length, 4, again.out);
  });

  it('members: reuses finished members and cached probabilities; --stop-before ends on a checkpoint that the rerun resumes', async () => {
    const dir = tmpDir('exp-members');
    const env = { COPYCAT_OVERRIDES: JSON.stringify(tinyOverrides(await npdFolder(96), 2)) };
    const base = ['members', '--profile', 'smoke', '--run-dir', dir];
    const first = experiment([...base, '--seeds', '1-2', '--flip'], env);
    assert.equal(first.code, 0, first.out);
    assert.deepEqual(first.out.split('\n').filter((l) => l.startsWith('{"experiment":"member"')).map((l) => JSON.parse(l).seed), [1, 2]);
    const again = experiment([...base, '--seeds', '1-2', '--flip'], env);
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /member seed 2 already trained/);
    // Two members x (plain + mirrored view): all four read back from the view-probability cache.
    assert.match(again.out, /"viewsFromCache":4,"viewsPredicted":0/);

    const stopped = experiment([...base, '--seeds', '3', '--stop-before', '0.001m'], env);
    assert.equal(stopped.code, 75, stopped.out);
    assert.match(stopped.out, /stopped by --stop-before: the next epoch .* would end after/);
    const group = fs.readdirSync(path.join(dir, 'experiments', 'members'))[0];
    const latest = JSON.parse(fs.readFileSync(path.join(dir, 'experiments', 'members', group, 's3', 'checkpoints', 'latest.json'), 'utf8'));
    assert.equal(latest.epoch, 1);
    const resumed = experiment([...base, '--seeds', '3'], env);
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /Resumed from .*: 1 epoch\(s\) done/);
    assert.match(resumed.out, /"experiment":"member".*"seed":3/);
    assert.match(experiment(['ensemble', '--run-dir', dir, '--stop-before', '1h']).out, /Unknown option '--stop-before'/);
  });
});
