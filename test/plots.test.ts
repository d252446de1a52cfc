import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { chartHtml, plotlyBundleHtml, plotlyBundlePath, saveChartHtml, showChart } from '../src/display/plotly';
import {
  classCountsOf, confusionMatrixFigure, defencesFigure, labelHistogramFigure, linePlotFigure, perClassBarsFigure,
  queryBudgetFigure, trainingCurvesFigure,
} from '../src/display/charts';
import { inNotebook, markdownTable, showMarkdown, NotebookSink, RichDisplay, setNotebookSink, showTable, textTable } from '../src/display/notebook';
import { CIFAR10_CLASSES } from '../src/types';
import type { BudgetPoint } from '../src/experiments/queryBudget';

/** A fake kernel that records what would have been displayed. */
function recordingSink(): { sink: NotebookSink; outputs: { mime: string; body: string }[] } {
  const outputs: { mime: string; body: string }[] = [];
  const d = (): RichDisplay => ({
    html: (s) => outputs.push({ mime: 'text/html', body: s }),
    markdown: (s) => outputs.push({ mime: 'text/markdown', body: s }),
    png: (b) => outputs.push({ mime: 'image/png', body: `${b.length}` }),
    text: (s) => outputs.push({ mime: 'text/plain', body: s }),
  });
  return {
    outputs,
    sink: { display: d(), newDisplay: d, mimeBundle: (data) => outputs.push({ mime: Object.keys(data).join('+'), body: data['text/html'] }) },
  };
}

/** Runs fn with console.log captured. */
function captureLog(fn: () => void): string[] {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    fn();
  } finally {
    console.log = orig;
  }
  return lines;
}

const history = [
  { epoch: 1, loss: 2.1, accuracy: 0.2, valLoss: 2.0, valAccuracy: 0.25 },
  { epoch: 2, loss: 1.5, accuracy: 0.45, valLoss: 1.6, valAccuracy: 0.4 },
  { epoch: 3, loss: 1.1, accuracy: 0.6 },
];

describe('plots: figure builders', () => {
  it('training curves: train + val traces on two axes, epochs on x, missing val as null', () => {
    const f = trainingCurvesFigure(history);
    assert.deepEqual(f.data.map((t) => t.name), ['train loss', 'train acc', 'val loss', 'val acc']);
    assert.deepEqual(f.data[0].x, [1, 2, 3]);
    assert.deepEqual(f.data[1].y, [0.2, 0.45, 0.6]);
    assert.deepEqual(f.data[2].y, [2.0, 1.6, null]);
    assert.equal(f.data[1].yaxis, 'y2');
    // The legend sits above the plot area (plotly's default for a horizontal legend is below the plots,
    // on top of the 'epoch' axis titles), and the title at the top edge so a wrapped legend fits under it.
    const legend = f.layout?.legend as Record<string, unknown>;
    assert.deepEqual(legend, { orientation: 'h', x: 0.5, xanchor: 'center', y: 1.02, yanchor: 'bottom' });
    assert.deepEqual(f.layout?.title, { text: 'Training curves', y: 0.98, yanchor: 'top' });
    assert.equal(trainingCurvesFigure(history.map(({ epoch, loss, accuracy }) => ({ epoch, loss, accuracy }))).data.length, 2);
    assert.throws(() => trainingCurvesFigure([]), /non-empty/);
    assert.throws(() => trainingCurvesFigure([{ epoch: 1, loss: 'x' as unknown as number, accuracy: 0 }]), /history\[0\]\.loss/);
  });

  it('query budget and defences: one line per mode and measure (x sorted), grouped bars per defence', () => {
    const pt = (mode: 'label' | 'probabilities', queries: number, pot: number, agreement: number): BudgetPoint => ({
      mode, queries, costUsd: queries / 1000, epochs: 2, accuracy: 0, macroAverage: 0, agreement, performanceOverTarget: pot, wallSeconds: 1, backend: 'cpu',
    });
    const f = queryBudgetFigure([pt('label', 5000, 0.5, 0.6), pt('label', 1000, 0.2, 0.3), pt('probabilities', 1000, 0.4, 0.45)], 1);
    assert.deepEqual(f.data.map((t) => t.name), ['label: performance over target', 'probabilities: performance over target', 'label: agreement', 'probabilities: agreement']);
    assert.deepEqual(f.data[0].x, [1000, 5000]);
    assert.deepEqual(f.data[0].y, [20, 50]);
    assert.deepEqual(f.data[3].y, [45]);
    assert.match(JSON.stringify(f.layout), /\$1\/1000/);
    assert.throws(() => queryBudgetFigure([], 1), /no budget points/);
    const d = defencesFigure([{ defence: 'top-1 label only', oracleAccuracy: 0.9, oracleAccuracyLoss: 0, copycatAccuracy: 0.6, copycatMacro: 0.6, agreement: 0.62, performanceOverTarget: 0.66, queries: 10, topOneKept: 1, wallSeconds: 1, backend: 'cpu' }]);
    assert.deepEqual(d.data.map((t) => t.y), [[90], [66]]);
    assert.throws(() => defencesFigure([]), /no defence rows/);
  });

  it('confusion matrix: heatmap with counts as text, optional row normalisation, size checked', () => {
    const names = ['a', 'b', 'c'];
    const conf = [[5, 0, 0], [1, 3, 0], [0, 0, 0]];
    const f = confusionMatrixFigure(conf, names, { normalize: true });
    const t = f.data[0];
    assert.equal(t.type, 'heatmap');
    assert.deepEqual(t.x, names);
    assert.deepEqual(t.text, [['5', '0', '0'], ['1', '3', '0'], ['0', '0', '0']]);
    assert.deepEqual(t.z, [[1, 0, 0], [0.25, 0.75, 0], [0, 0, 0]]);
    assert.deepEqual(confusionMatrixFigure(conf, names).data[0].z, conf);
    assert.throws(() => confusionMatrixFigure([[1, 2], [3, 4]], names), /3x3/);
  });

  it('per-class bars: one grouped bar trace per model, lengths checked', () => {
    const f = perClassBarsFigure([{ name: 'oracle', values: new Float32Array(10).fill(0.5) }, { name: 'copycat', values: Array(10).fill(0.25) }], CIFAR10_CLASSES, { yTitle: 'F1' });
    assert.equal(f.layout?.barmode, 'group');
    assert.deepEqual(f.data.map((t) => t.name), ['oracle', 'copycat']);
    assert.deepEqual(f.data[0].x, [...CIFAR10_CLASSES]);
    assert.deepEqual(f.data[1].y, Array(10).fill(0.25));
    assert.throws(() => perClassBarsFigure([{ name: 'short', values: [1, 2] }], CIFAR10_CLASSES), /'short' has 2 values, expected 10/);
  });

  it('label histogram counts classes and rejects labels outside the class range', () => {
    const labels = Uint8Array.from([0, 1, 1, 2, 2, 2]);
    assert.deepEqual(classCountsOf(labels, 3), [1, 2, 3]);
    const f = labelHistogramFigure(labels, ['x', 'y', 'z']);
    assert.deepEqual(f.data[0].y, [1, 2, 3]);
    assert.throws(() => labelHistogramFigure(Uint8Array.from([0, 3]), ['x', 'y', 'z']), /labels\[1\] = 3/);
  });

  it('line plot: series kept as arrays, log x option, mismatched lengths rejected', () => {
    const f = linePlotFigure([{ name: 'copycat', x: [1000, 10000], y: Float32Array.from([0.5, 0.75]) }], { logX: true, xTitle: 'queries' });
    assert.deepEqual(f.data[0].y, [0.5, 0.75]);
    assert.equal((f.layout?.xaxis as { type: string }).type, 'log');
    assert.throws(() => linePlotFigure([{ name: 's', x: [1, 2], y: [1] }]), /2 x values but 1 y values/);
  });
});

describe('plots: HTML', () => {
  it('chartHtml holds a div with the id and a script that draws the figure JSON into it', () => {
    const f = linePlotFigure([{ name: 'n</script><b>', x: [1], y: [2] }], { title: 'budget' });
    const html = chartHtml(f, { id: 'chart-1' });
    assert.match(html, /<div id="chart-1"/);
    assert.match(html, /Plotly\.newPlot\(el, fig\.data, fig\.layout, fig\.config\)/);
    assert.match(html, /"name":"n<\\\/script><b>"/, 'a </script> inside data must be escaped');
    assert.equal((html.match(/<\/script>/g) ?? []).length, 1);
    const figJson = /var fig = (.*);\n/.exec(html)?.[1];
    assert.ok(figJson);
    assert.deepEqual(JSON.parse(figJson.replace(/<\\\/script/g, '</script')).data, f.data);
    assert.notEqual(chartHtml(f), chartHtml(f), 'default ids are unique');
    assert.throws(() => chartHtml(f, { id: '1"bad' }), /id '1"bad'/);
  });

  it('plotlyBundleHtml wraps the real plotly.js bundle in one script element', () => {
    const html = plotlyBundleHtml();
    assert.ok(html.length > 1e6, `bundle is ${html.length} chars`);
    assert.ok(html.includes('window.Plotly = Plotly') || html.includes('window.Plotly=') , 'bundle sets window.Plotly');
    assert.ok(fs.existsSync(plotlyBundlePath()));
  });

  it('saveChartHtml writes a page that loads a sibling plotly.min.js copied once', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cc-plots-'));
    try {
      const f = labelHistogramFigure([0, 1, 1], ['a', 'b']);
      const file = saveChartHtml(f, path.join(dir, 'hist.html'));
      const html = fs.readFileSync(file, 'utf8');
      assert.match(html, /<script type="text\/javascript" src="plotly.min.js"><\/script>/);
      assert.match(html, /<title>Label histogram \(3 images\)<\/title>/);
      const lib = path.join(dir, 'plotly.min.js');
      assert.equal(fs.statSync(lib).size, fs.statSync(plotlyBundlePath()).size);
      const mtime = fs.statSync(lib).mtimeMs;
      saveChartHtml(f, path.join(dir, 'again.html'));
      assert.equal(fs.statSync(lib).mtimeMs, mtime, 'bundle not copied twice');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['again.html', 'hist.html', 'plotly.min.js']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('notebook display helpers', () => {
  afterEach(() => setNotebookSink(undefined));

  it('showChart emits HTML in a kernel (plus the plotly MIME on request) and a summary line elsewhere', () => {
    const f = linePlotFigure([{ name: 'acc', x: [1], y: [1] }], { title: 'budget' });
    const rec = recordingSink();
    setNotebookSink(rec.sink);
    showChart(f);
    showChart(f, { plotlyMime: true });
    assert.equal(rec.outputs[0].mime, 'text/html');
    assert.match(rec.outputs[0].body, /Plotly\.newPlot/);
    assert.equal(rec.outputs[1].mime, 'text/html+application/vnd.plotly.v1+json');
    setNotebookSink(null);
    assert.deepEqual(captureLog(() => showChart(f)), ['[budget: 1 trace(s): acc]']);
  });

  it('outside a kernel (mocha) no tslab is detected, so output is plain text', () => {
    setNotebookSink(undefined);
    assert.equal(inNotebook(), false);
    assert.deepEqual(captureLog(() => showMarkdown('**x**')), ['**x**']);
  });

  it('tables: markdown escapes pipes/newlines, text aligns numbers; showTable picks by environment', () => {
    const rows = [{ model: 'oracle|A', acc: 0.81234, n: 10000 }, { model: 'copy\ncat', acc: 0.5, n: 5 }];
    assert.equal(markdownTable(rows, { digits: 2 }), '| model | acc | n |\n| --- | --- | --- |\n| oracle\\|A | 0.81 | 10000 |\n| copy cat | 0.50 | 5 |');
    const text = textTable(rows, { digits: 2 }).split('\n');
    assert.equal(text.length, 4);
    assert.equal(text[2], 'oracle|A  0.81  10000');
    assert.equal(text[3], 'copy cat  0.50      5');
    const rec = recordingSink();
    setNotebookSink(rec.sink);
    showTable(rows);
    assert.equal(rec.outputs[0].mime, 'text/markdown');
    setNotebookSink(null);
    assert.equal(captureLog(() => showTable(rows)).length, 1);
  });
});
