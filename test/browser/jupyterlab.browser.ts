import { strict as assert } from 'assert';
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { linePlotFigure } from '../../src/display/charts';
import { CHROMIUM_ARGS, findChromium, saveChartPng } from '../../src/display/plotly';
import { dataDir, ensureDir } from '../../src/paths';
import { notebookJson } from '../notebookFixture';
import { freePort, stopServer, waitForServer } from './labServer';

/**
 * Real-browser check (not part of `npm test`: ~30-60 s, needs Debian's chromium + the project venv):
 * executes a notebook with a plotly chart and an image grid through run-notebooks.py (which trusts it),
 * opens it in JupyterLab on 127.0.0.1 with headless chromium via playwright-core, waits for the chart's
 * SVG and the PNG, and saves a screenshot to <data>/browser-test/. Also exports a chart to PNG.
 *   npx mocha test/browser/jupyterlab.browser.ts
 * Skips with a reason when chromium or the venv is missing, unless COPYCAT_REQUIRE_BROWSER=1.
 */

const ROOT = path.resolve(__dirname, '..', '..');
const VENV = process.env.COPYCAT_VENV ?? path.join(ROOT, '.venv');

const notebook = notebookJson;

describe('browser: executed notebook in JupyterLab (chromium + playwright-core)', function () {
  this.timeout(240_000);
  const exe = findChromium();
  let tmp = '';
  let server: ChildProcess | undefined;
  let serverLog = '';

  before(function () {
    const missing = !exe ? 'no chromium (apt-get install -y chromium, or set COPYCAT_CHROMIUM)'
      : !fs.existsSync(path.join(VENV, 'bin', 'jupyter-lab')) ? `no JupyterLab venv at ${VENV} (npm run lab:setup)` : '';
    if (missing) {
      if (process.env.COPYCAT_REQUIRE_BROWSER === '1') throw new Error(`COPYCAT_REQUIRE_BROWSER=1 but ${missing}`);
      console.log(`      SKIPPED browser tests: ${missing}`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-browser-'));
  });

  after(() => {
    // The server runs in its own process group (detached) so its kernels go with it.
    stopServer(server);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('renders the plotly chart and the image grid of a trusted, headlessly executed notebook', async () => {
    const started = Date.now();
    const jupyterDir = path.join(tmp, 'jupyter');
    const env = { ...process.env, COPYCAT_JUPYTER_DIR: jupyterDir };
    const nbDir = ensureDir(path.join(tmp, 'nb'));
    const src = JSON.stringify(path.join(ROOT, 'src'));
    fs.writeFileSync(path.join(nbDir, 'charts.ipynb'), notebook([
      `require(${JSON.stringify(path.join(ROOT, 'node_modules/ts-node'))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(ROOT, 'tsconfig.json'))} });\n` +
        `const plots = require(${src} + '/display/plotly.ts'); const charts = require(${src} + '/display/charts.ts');\n` +
        `const grid = require(${src} + '/display/imageGrid.ts');\nplots.showPlotlyBundle();`,
      `plots.showChart(charts.linePlotFigure([{ name: 'copycat', x: [1000, 10000, 100000], y: [0.4, 0.6, 0.75] }], { title: 'browser test chart', logX: true }));`,
      `const n = 8; const img = new Uint8Array(n * 32 * 32 * 3).map((_, i) => (i * 37) % 256);\n` +
        `const png = await grid.showImageGrid({ images: img, n, height: 32, width: 32, labels: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]) });`,
    ]));
    const out = path.join(tmp, 'executed');
    const run = spawnSync('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'python', path.join(ROOT, 'scripts/run-notebooks.py'),
      path.join(nbDir, 'charts.ipynb'), '--build', 'never', '--out', out, '--run-dir', path.join(tmp, 'run')], { cwd: ROOT, env, encoding: 'utf8' });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    const executedAt = Date.now();

    const port = await freePort();
    const token = crypto.randomBytes(16).toString('hex');
    server = spawn('bash', [path.join(ROOT, 'scripts/jupyter-env.sh'), 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', `--port=${port}`,
      `--ServerApp.root_dir=${tmp}`, `--IdentityProvider.token=${token}`, ...(process.getuid?.() === 0 ? ['--allow-root'] : [])],
    { cwd: tmp, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (d) => (serverLog += d));
    server.stderr?.on('data', (d) => (serverLog += d));
    await waitForServer(`http://127.0.0.1:${port}/api/status?token=${token}`, server, () => serverLog, 60_000);

    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { chromium } = require('playwright-core') as typeof import('playwright-core');
    const browser = await chromium.launch({ executablePath: exe, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      // A fresh workspace, so JupyterLab does not restore tabs of an earlier session.
      const ws = `cc-${crypto.randomBytes(4).toString('hex')}`;
      await page.goto(`http://127.0.0.1:${port}/lab/workspaces/${ws}/tree/executed/charts.ipynb?reset&token=${token}`);
      await page.waitForSelector('.js-plotly-plot .main-svg', { timeout: 90_000 });
      await page.waitForSelector('.jp-OutputArea-output img[src^="data:image/png"]', { timeout: 30_000 });
      const title = await page.locator('.js-plotly-plot .gtitle').first().textContent();
      assert.equal(title, 'browser test chart');
      const points = await page.locator('.js-plotly-plot .scatterlayer .point').count();
      assert.equal(points, 3, 'one marker per data point');
      const shot = path.join(ensureDir(path.join(dataDir(), 'browser-test')), 'jupyterlab-charts.png');
      await page.screenshot({ path: shot });
      console.log(`      screenshot: ${shot}; execute ${((executedAt - started) / 1000).toFixed(1)} s, ` +
        `lab + render ${((Date.now() - executedAt) / 1000).toFixed(1)} s`);
    } finally {
      await browser.close();
    }
  });

  it('saveChartPng exports a chart to a PNG of the requested size', async () => {
    const file = path.join(tmp, 'chart.png');
    const res = await saveChartPng(linePlotFigure([{ name: 'a', x: [1, 2, 3], y: [3, 1, 2] }], { title: 'png export' }), file, { width: 640, height: 360 });
    assert.equal(res.skipped, undefined);
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    assert.equal(info.width, 640);
    assert.equal(info.height, 360);
    let nonWhite = 0;
    for (let i = 0; i < data.length; i += info.channels) if (data[i] < 200) nonWhite++;
    assert.ok(nonWhite > 500, `chart pixels drawn: ${nonWhite}`);
    assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('.chart-')), [], 'temporary page removed');
  });
});
