import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { defaultGroup, memberRecipe, parseSeeds, recipeDifference, trainingSeconds, trainSeedMembers } from '../src/experiments/seedMembers';
import { openRun } from '../src/run';
import { tmpDir } from './oracleFixtures';

describe('seed members', () => {
  it('parses seed lists and ranges, once each, and names what it cannot read', () => {
    assert.deepEqual(parseSeeds('1,2,3'), [1, 2, 3]);
    assert.deepEqual(parseSeeds('1-4'), [1, 2, 3, 4]);
    assert.deepEqual(parseSeeds(' 5, 2-3 ,3'), [5, 2, 3]);
    assert.throws(() => parseSeeds('1,x'), /--seeds: expected whole numbers or ranges like 1,2,3 or 1-4, got 'x'/);
    assert.throws(() => parseSeeds('4-2'), /'4-2' must be seeds >= 1 in ascending order/);
    assert.throws(() => parseSeeds('0'), /must be seeds >= 1/);
    assert.throws(() => parseSeeds(' , '), /no seed given/);
  });

  it('groups members by set, architecture and schedule, and tells recipes apart', () => {
    const run = openRun({ profile: 'full', dir: tmpDir('members-run'), overrides: { copycat: { architecture: 'resnet-9w32', train: { epochs: 22 } } } });
    const r = memberRecipe(run, 'NPD-SL');
    assert.equal(defaultGroup(r), 'NPD-SL-resnet-9w32-e22');
    // NPD+PD-SL trains its own length on the full profile (copycat.trainBySet).
    assert.equal(defaultGroup(memberRecipe(run, 'NPD+PD-SL')), 'NPD_PD-SL-resnet-9w32-e4');
    assert.equal(recipeDifference(r, memberRecipe(run, 'NPD-SL')), '');
    const other = { ...r, train: { ...r.train, augmentation: { crop: true, flip: true, pad: 4, probability: 1 } } };
    assert.match(recipeDifference(r, other), /^train\.augmentation: .*"probability":0\.5\} there, .*"probability":1\} now$/);
    assert.match(recipeDifference(r, { ...r, architecture: 'resnet-9' }), /architecture: "resnet-9w32" there, "resnet-9" now/);
  });

  it('keeps bf16 members apart from float32 ones, and float32 recipes written before the field still match', () => {
    const run = openRun({ profile: 'full', dir: tmpDir('members-run'), overrides: { copycat: { architecture: 'resnet-9w32', train: { epochs: 22 } } } });
    const strict = memberRecipe(run, 'NPD-SL', 'strict');
    const bf16 = memberRecipe(run, 'NPD-SL', 'bf16');
    assert.equal('fpmath' in strict, false);
    assert.equal(bf16.fpmath, 'bf16');
    assert.equal(defaultGroup(bf16), 'NPD-SL-resnet-9w32-e22-bf16');
    assert.equal(recipeDifference(strict, memberRecipe(run, 'NPD-SL', 'strict')), '');
    assert.equal(recipeDifference(strict, bf16), 'fpmath: strict there, bf16 now (COPYCAT_FPMATH)');
    assert.equal(recipeDifference(bf16, strict), 'fpmath: bf16 there, strict now (COPYCAT_FPMATH)');
  });

  it('reads a finished member back, with its model where the run is now and its epochs\' time summed', async () => {
    const dir = tmpDir('members-run');
    const run = openRun({ profile: 'smoke', dir });
    const recipe = memberRecipe(run, 'NPD-SL');
    const memberDir = path.join(dir, 'experiments', 'members', defaultGroup(recipe), 's1');
    fs.mkdirSync(memberDir, { recursive: true });
    fs.writeFileSync(path.join(memberDir, '..', 'recipe.json'), JSON.stringify(recipe));
    // As written before trainingSeconds existed, by a run directory that has moved since.
    const old = { seed: 1, recipe, modelDir: '/moved/away/model', history: [{ epoch: 1, seconds: 10 }, { epoch: 2, seconds: 20.5 }], wallSeconds: 21 };
    fs.writeFileSync(path.join(memberDir, 'result.json'), JSON.stringify(old));
    const logged: string[] = [];
    const r = await trainSeedMembers(run, [1], { log: (s) => logged.push(s) });
    assert.equal(r.ensemble, null);
    assert.equal(r.members[0].modelDir, path.join(memberDir, 'model'));
    assert.equal(r.members[0].trainingSeconds, 30.5);
    assert.equal(r.members[0].wallSeconds, 21);
    assert.match(logged.join('\n'), /member seed 1 already trained/);
    assert.equal(trainingSeconds([]), 0);
  });

  it('refuses to add members of another recipe to a group, before any training', async () => {
    const dir = tmpDir('members-run');
    const run = openRun({ profile: 'smoke', dir });
    const recipe = memberRecipe(run, 'NPD-SL');
    const groupDir = path.join(dir, 'experiments', 'members', defaultGroup(recipe));
    fs.mkdirSync(groupDir, { recursive: true });
    fs.writeFileSync(path.join(groupDir, 'recipe.json'), JSON.stringify({ ...recipe, train: { ...recipe.train, labelSmoothing: 0 } }));
    await assert.rejects(trainSeedMembers(run, [1], { log: () => undefined }), /holds members of another recipe \(train\.labelSmoothing: 0 there, 0\.2 now\); use another --group or the same COPYCAT_OVERRIDES and COPYCAT_FPMATH/);
    const fixedSeed = openRun({ profile: 'smoke', dir: tmpDir('members-run'), overrides: { copycat: { train: { seed: 3 } } } });
    await assert.rejects(trainSeedMembers(fixedSeed, [1, 2], { log: () => undefined }), /sets copycat\.train\.seed \(3\), which would give every member the same batch order/);
  });
});
