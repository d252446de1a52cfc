import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../io';
import { showHtml, tslabSink } from './notebook';

/**
 * Plotly rendering for notebooks and run folders (the figures themselves are built in charts.ts). Figures
 * are plain JSON ({data, layout}); the browser side is the plotly.js bundle from npm. Output of only the
 * plotly MIME type renders nothing in JupyterLab without the Python plotly package, so a notebook injects
 * the bundle once (`showPlotlyBundle()`) and each chart is a small <div> + <script>.
 */

export interface PlotlyTrace {
  type?: string;
  name?: string;
  [key: string]: unknown;
}

export interface Figure {
  data: PlotlyTrace[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/**
 * The plotly.js bundle file: the minified dist (~4.8 MB) when `plotly.js-dist-min` is installed, else the
 * unminified `plotly.js-dist` (~11 MB). Both set `window.Plotly`.
 */
export function plotlyBundlePath(): string {
  for (const id of ['plotly.js-dist-min/plotly.min.js', 'plotly.js-dist/plotly.js']) {
    try {
      return require.resolve(id);
    } catch {
      /* try the next one */
    }
  }
  throw new Error('plotly.js bundle not found: install plotly.js-dist (npm ci) or plotly.js-dist-min');
}

let bundleCache: string | undefined;
function bundleSource(): string {
  bundleCache ??= fs.readFileSync(plotlyBundlePath(), 'utf8');
  return bundleCache;
}

/** `</script` inside inlined code would end the <script> element early. */
function scriptSafe(js: string): string {
  return js.replace(/<\/script/gi, '<\\/script');
}

/** A <script> with the whole plotly.js bundle: put its output once per notebook, before any chart. */
export function plotlyBundleHtml(): string {
  return `<script type="text/javascript">${scriptSafe(bundleSource())}</script>`;
}

/** Injects the bundle in a notebook (no-op outside one). */
export function showPlotlyBundle(): void {
  if (tslabSink()) showHtml(plotlyBundleHtml());
  else console.log('[plotly bundle: injected in notebooks only]');
}

export interface ChartHtmlOptions {
  /** div id; default a random one (ids must be unique within a page). */
  id?: string;
  /** CSS height of the div; default from layout.height or 420px. */
  height?: string;
}

/**
 * A <div> plus a script that draws `fig` into it once `window.Plotly` exists. It polls for a few seconds
 * because JupyterLab may render outputs of the bundle cell and the chart cell in either order.
 */
export function chartHtml(fig: Figure, opts: ChartHtmlOptions = {}): string {
  validateFigure(fig);
  const id = opts.id ?? `cc-plot-${crypto.randomBytes(6).toString('hex')}`;
  if (!/^[A-Za-z][\w-]*$/.test(id)) throw new Error(`chartHtml: id '${id}' must be a letter followed by letters, digits, - or _`);
  const h = opts.height ?? (typeof fig.layout?.height === 'number' ? `${fig.layout.height}px` : '420px');
  const json = scriptSafe(JSON.stringify({ data: fig.data, layout: fig.layout ?? {}, config: { responsive: true, ...(fig.config ?? {}) } }));
  return (
    `<div id="${id}" class="copycat-chart" style="width:100%;height:${h};"></div>\n` +
    `<script type="text/javascript">(function () {\n` +
    `  var fig = ${json};\n` +
    `  var tries = 0;\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${JSON.stringify(id)});\n` +
    `    if (window.Plotly && el) { window.Plotly.newPlot(el, fig.data, fig.layout, fig.config); return; }\n` +
    `    if (++tries < 100) { setTimeout(draw, 100); return; }\n` +
    `    if (el) el.textContent = 'plotly.js is not loaded: run the cell that calls showPlotlyBundle() (and trust the notebook).';\n` +
    `  }\n` +
    `  draw();\n` +
    `})();</script>`
  );
}

export interface ShowChartOptions extends ChartHtmlOptions {
  /**
   * Also attach the application/vnd.plotly.v1+json MIME type, which JupyterLab renders natively when the
   * Python plotly package is in its environment (and then ignores the HTML). Default false.
   */
  plotlyMime?: boolean;
  /** Text printed outside notebooks; default the title and trace names. */
  text?: string;
}

function figureSummary(fig: Figure): string {
  const title = (fig.layout?.title as { text?: string } | undefined)?.text ?? 'chart';
  const names = fig.data.map((t) => t.name ?? t.type ?? 'trace').join(', ');
  return `[${title}: ${fig.data.length} trace(s): ${names}]`;
}

/** Shows a chart in a notebook; elsewhere prints a one-line summary. */
export function showChart(fig: Figure, opts: ShowChartOptions = {}): void {
  const sink = tslabSink();
  if (!sink) {
    console.log(opts.text ?? figureSummary(fig));
    return;
  }
  const html = chartHtml(fig, opts);
  if (opts.plotlyMime && sink.mimeBundle) {
    sink.mimeBundle({ 'text/html': html, 'application/vnd.plotly.v1+json': JSON.stringify({ data: fig.data, layout: fig.layout ?? {} }) } as Record<string, string>);
  } else {
    sink.display.html(html);
  }
}

export interface SaveChartOptions extends ChartHtmlOptions {
  /** Put the bundle inside the HTML file (single file to share, ~5-11 MB each). Default false. */
  inline?: boolean;
  title?: string;
}

/**
 * Writes a standalone HTML page. By default it loads `plotly.min.js` from a copy beside it (written once
 * per folder): a run folder holds many charts, and inlining the bundle would cost megabytes each, while a
 * sibling copy keeps every chart a few kB and still works offline from file://. Returns the file path.
 */
export function saveChartHtml(fig: Figure, file: string, opts: SaveChartOptions = {}): string {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  let loader: string;
  if (opts.inline) {
    loader = plotlyBundleHtml();
  } else {
    const src = plotlyBundlePath();
    const dest = path.join(dir, 'plotly.min.js');
    const have = fs.existsSync(dest) ? fs.statSync(dest).size : -1;
    if (have !== fs.statSync(src).size) fs.copyFileSync(src, dest);
    loader = '<script type="text/javascript" src="plotly.min.js"></script>';
  }
  const title = opts.title ?? (fig.layout?.title as { text?: string } | undefined)?.text ?? 'chart';
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const html =
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title>${loader}</head>\n` +
    `<body style="margin:0">${chartHtml(fig, opts)}</body></html>\n`;
  writeFileAtomic(file, html);
  return file;
}

/** System chromium for PNG export and browser tests: $COPYCAT_CHROMIUM, else Debian's paths. */
export function findChromium(): string | undefined {
  const candidates = [process.env.COPYCAT_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((c): c is string => !!c && fs.existsSync(c));
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

export type PngExport = { file: string; skipped?: undefined } | { file?: undefined; skipped: string };

/**
 * Renders a chart to PNG with a headless system chromium driven by playwright-core (both optional: when
 * either is missing the result says why and nothing is written). Takes ~2-5 s per call (browser start).
 */
export async function saveChartPng(fig: Figure, file: string, opts: { width?: number; height?: number } = {}): Promise<PngExport> {
  const exe = findChromium();
  if (!exe) return { skipped: 'no chromium found (apt-get install chromium, or set COPYCAT_CHROMIUM)' };
  let pw: typeof import('playwright-core');
  try {
    pw = require('playwright-core');
  } catch {
    return { skipped: 'playwright-core is not installed (it is a devDependency: npm install)' };
  }
  const width = opts.width ?? 900;
  const height = opts.height ?? 500;
  const out = path.resolve(file);
  const dir = fs.mkdtempSync(path.join(path.dirname(out), '.chart-'));
  const browser = await pw.chromium.launch({ executablePath: exe, args: CHROMIUM_ARGS });
  try {
    const html = saveChartHtml({ ...fig, layout: { ...(fig.layout ?? {}), width, height } }, path.join(dir, 'chart.html'), { height: `${height}px` });
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(`file://${html}`);
    await page.waitForSelector('.js-plotly-plot .main-svg', { timeout: 15000 });
    await page.locator('.copycat-chart').screenshot({ path: out });
    return { file: out };
  } finally {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Clear errors for malformed figures before they become a blank chart in a browser. */
export function validateFigure(fig: Figure): void {
  if (!fig || !Array.isArray(fig.data)) throw new Error('Figure.data must be an array of plotly traces');
  fig.data.forEach((t, i) => {
    if (typeof t !== 'object' || t === null) throw new Error(`Figure.data[${i}] must be an object (a plotly trace)`);
  });
}

/**
 * Shows a chart in the notebook and keeps it in the run's figures/ folder as standalone HTML (and PNG
 * when $COPYCAT_FIGURE_PNG=1 and a Chromium is installed: each PNG costs a browser start, a few seconds).
 * `run` is any run folder (a Run from src/run).
 */
export async function presentFigure(run: { dir: string }, name: string, fig: Figure): Promise<string> {
  showChart(fig);
  const file = saveChartHtml(fig, path.join(run.dir, 'figures', `${name}.html`));
  if (process.env.COPYCAT_FIGURE_PNG === '1') {
    const png = await saveChartPng(fig, path.join(run.dir, 'figures', `${name}.png`));
    if (png.skipped) console.log(`figure ${name}: PNG skipped (${png.skipped})`);
  }
  return file;
}
