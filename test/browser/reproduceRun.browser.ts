import { strict as assert } from 'assert';
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CHROMIUM_ARGS, findChromium } from '../../src/display/plotly';
import { dataDir, ensureDir } from '../../src/paths';
import { freePort, stopServer, waitForServer } from './labServer';

/**
 * A `reproduce` run opened in JupyterLab the way a user does: `npm run lab -- --run data/runs/ci-smoke`
 * (scripts/lab.sh), then the executed 04_results.ipynb of that run, found through the URL lab.sh prints,
 * must show a plotly chart drawn as SVG. CI runs it after `npm run reproduce -- --profile smoke --run-dir
 * data/runs/ci-smoke`; elsewhere it skips with the reason when that run (or $COPYCAT_BROWSER_RUN) is not
 * there, unless COPYCAT_REQUIRE_BROWSER=1.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const VENV = process.env.COPYCAT_VENV ?? path.join(ROOT, '.venv');
const RUN = path.resolve(ROOT, process.env.COPYCAT_BROWSER_RUN ?? 'data/runs/ci-smoke');

describe('browser: a reproduce run opened with npm run lab -- --run', function () {
  this.timeout(240_000);
  const exe = findChromium();
  let server: ChildProcess | undefined;
  let log = '';

  before(function () {
    const executed = path.join(RUN, 'notebooks', '04_results.ipynb');
    const missing = !exe ? 'no chromium (apt-get install -y chromium, or set COPYCAT_CHROMIUM)'
      : !fs.existsSync(path.join(VENV, 'bin', 'jupyter-lab')) ? `no JupyterLab venv at ${VENV} (npm run lab:setup)`
        : !fs.existsSync(path.join(RUN, 'config.json')) || !fs.existsSync(executed)
          ? `no reproduce run with an executed 04_results.ipynb at ${RUN} (npm run reproduce -- --profile smoke --run-dir ${path.relative(ROOT, RUN)}, or set COPYCAT_BROWSER_RUN)`
          : '';
    if (missing) {
      if (process.env.COPYCAT_REQUIRE_BROWSER === '1') throw new Error(`COPYCAT_REQUIRE_BROWSER=1 but ${missing}`);
      console.log(`      SKIPPED reproduce-run browser test: ${missing}`);
      this.skip();
    }
  });

  after(() => stopServer(server));

  it('serves notebooks/ and the run\'s executed notebooks; 04_results shows its plotly chart', async () => {
    const started = Date.now();
    const port = await freePort();
    const token = crypto.randomBytes(16).toString('hex');
    // The project's own .jupyter (no COPYCAT_JUPYTER_DIR): reproduce signed the executed notebooks there,
    // and an untrusted notebook's chart would stay blank. The build is skipped: reproduce just made it.
    server = spawn('bash', [path.join(ROOT, 'scripts/lab.sh'), '--run', RUN, '--no-build', `--IdentityProvider.token=${token}`], {
      cwd: ROOT, env: { ...process.env, COPYCAT_LAB_PORT: String(port) }, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (d) => (log += d));
    server.stderr?.on('data', (d) => (log += d));
    await waitForServer(`http://127.0.0.1:${port}/api/status?token=${token}`, server, () => log, 60_000);

    const printed = /\[lab\] its executed notebooks: (http:\/\/127\.0\.0\.1:\d+\/lab\/tree\/(\S+))/.exec(log);
    assert.ok(printed, `lab.sh printed no URL of the run's executed notebooks:\n${log}`);
    const treePath = printed[2];
    assert.ok(treePath.endsWith(`${path.basename(RUN)}/notebooks`), treePath);
    // The browser opens on the repository's notebooks/ (data/runs/... is served beside it, under the root).
    const home = await fetch(`http://127.0.0.1:${port}/?token=${token}`, { redirect: 'manual' });
    const nbPath = /\/lab\/tree\/(\S*notebooks)\?/.exec(home.headers.get('location') ?? '')?.[1];
    assert.ok(nbPath, `the lab opens on notebooks/: redirected to ${home.headers.get('location')}`);
    const listing = await (await fetch(`http://127.0.0.1:${port}/api/contents/${nbPath}?token=${token}`)).json() as { content: { name: string }[] };
    assert.ok(listing.content.some((c) => c.name === '04_results.ipynb'), 'notebooks/ is served too');

    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { chromium } = require('playwright-core') as typeof import('playwright-core');
    const browser = await chromium.launch({ executablePath: exe, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const ws = `cc-run-${crypto.randomBytes(4).toString('hex')}`;
      await page.goto(`http://127.0.0.1:${port}/lab/workspaces/${ws}/tree/${treePath}/04_results.ipynb?reset&token=${token}`);
      await page.waitForSelector('.js-plotly-plot .main-svg', { timeout: 120_000 });
      // The document area's current tab is the run's notebook (not notebooks/04_results.ipynb of the repository).
      const tab = await page.locator('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current').first().getAttribute('title');
      assert.match(tab ?? '', new RegExp(`Path: ${treePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/04_results\\.ipynb`), `current tab: ${tab}`);
      const charts = await page.locator('.js-plotly-plot').count();
      assert.ok(charts >= 1, 'at least one plotly chart rendered');
      await page.locator('.js-plotly-plot').first().scrollIntoViewIfNeeded();
      const shot = path.join(ensureDir(path.join(dataDir(), 'browser-test')), 'jupyterlab-run-04_results.png');
      await page.screenshot({ path: shot });
      console.log(`      ${charts} chart(s) in ${treePath}/04_results.ipynb; screenshot: ${shot}; ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      await browser.close();
    }
  });
});
