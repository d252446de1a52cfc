import * as path from 'path';
import { Figure, saveChartHtml, saveChartPng, showChart } from '../plots';
import type { Run } from '../run';

/**
 * Shows a chart in the notebook and keeps it in the run's figures/ folder as standalone HTML (and PNG
 * when $COPYCAT_FIGURE_PNG=1 and a Chromium is installed: each PNG costs a browser start, a few seconds).
 */
export async function presentFigure(run: Run, name: string, fig: Figure): Promise<string> {
  showChart(fig);
  const file = saveChartHtml(fig, path.join(run.dir, 'figures', `${name}.html`));
  if (process.env.COPYCAT_FIGURE_PNG === '1') {
    const png = await saveChartPng(fig, path.join(run.dir, 'figures', `${name}.png`));
    if (png.skipped) console.log(`figure ${name}: PNG skipped (${png.skipped})`);
  }
  return file;
}
