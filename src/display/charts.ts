import type { Figure, PlotlyTrace } from './plotly';

/**
 * The domain figures: training curves, confusion matrix, per-class bars, label histogram, line plots and the
 * experiments' figures. Each returns a plain plotly Figure; plotly.ts renders, shows and saves it.
 */

const titled = (text: string) => ({ text });

/** Structurally compatible with train/train.ts's EpochRecord. */
export interface EpochPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
}

/**
 * Loss (left) and accuracy (right) per epoch, training and, when present, the held-out set the
 * training loop evaluated each epoch (`valName`: the oracle and copycat steps use the CIFAR-10 test set).
 */
export function trainingCurvesFigure(history: EpochPoint[], title = 'Training curves', valName = 'val'): Figure {
  if (!Array.isArray(history) || history.length === 0) throw new Error('trainingCurvesFigure: history must be a non-empty array of epoch records');
  history.forEach((h, i) => {
    for (const k of ['epoch', 'loss', 'accuracy'] as const) {
      if (typeof h[k] !== 'number') throw new Error(`trainingCurvesFigure: history[${i}].${k} must be a number, got ${typeof h[k]}`);
    }
  });
  const x = history.map((h) => h.epoch);
  const line = (name: string, y: (number | null)[], axis: 1 | 2, dash: string, color: string): PlotlyTrace => ({
    type: 'scatter', mode: 'lines+markers', name, x, y,
    xaxis: axis === 1 ? 'x' : 'x2', yaxis: axis === 1 ? 'y' : 'y2',
    line: { dash, color },
  });
  const data = [line('train loss', history.map((h) => h.loss), 1, 'solid', '#1f77b4'), line('train acc', history.map((h) => h.accuracy), 2, 'solid', '#ff7f0e')];
  if (history.some((h) => h.valLoss !== undefined)) data.push(line(`${valName} loss`, history.map((h) => h.valLoss ?? null), 1, 'dash', '#1f77b4'));
  if (history.some((h) => h.valAccuracy !== undefined)) data.push(line(`${valName} acc`, history.map((h) => h.valAccuracy ?? null), 2, 'dash', '#ff7f0e'));
  return {
    data,
    layout: {
      // Title at the top edge, so that a legend wrapped onto two rows (narrow cells) still fits below it.
      title: { ...titled(title), y: 0.98, yanchor: 'top' },
      xaxis: { domain: [0, 0.45], title: titled('epoch') },
      yaxis: { title: titled('loss') },
      xaxis2: { domain: [0.55, 1], title: titled('epoch'), anchor: 'y2' },
      yaxis2: { title: titled('accuracy'), anchor: 'x2', range: [0, 1] },
      // Above the plot area, under the title: plotly's default place for a horizontal legend is just below
      // the plots, where it covered the 'epoch' axis titles.
      legend: { orientation: 'h', x: 0.5, xanchor: 'center', y: 1.02, yanchor: 'bottom' },
    },
  };
}

/**
 * Confusion matrix heatmap (rows: true class, columns: predicted), counts as cell text. `normalize`
 * colours by row fraction (recall per class) so rare classes are not washed out.
 */
export function confusionMatrixFigure(confusion: number[][], classNames: readonly string[], opts: { title?: string; normalize?: boolean } = {}): Figure {
  const k = classNames.length;
  if (confusion.length !== k || confusion.some((r) => !Array.isArray(r) || r.length !== k)) {
    throw new Error(`confusionMatrixFigure: confusion must be ${k}x${k} (one row and column per class name)`);
  }
  const z = opts.normalize
    ? confusion.map((r) => {
        const s = r.reduce((a, b) => a + b, 0);
        return r.map((v) => (s > 0 ? v / s : 0));
      })
    : confusion;
  const names = [...classNames];
  return {
    data: [{
      type: 'heatmap', z, x: names, y: names, text: confusion.map((r) => r.map(String)),
      texttemplate: '%{text}', colorscale: 'Blues', hovertemplate: 'true %{y}<br>predicted %{x}<br>%{text}<extra></extra>',
    }],
    layout: {
      title: titled(opts.title ?? 'Confusion matrix'),
      xaxis: { title: titled('predicted'), side: 'bottom' },
      yaxis: { title: titled('true'), autorange: 'reversed' },
      height: 520,
    },
  };
}

export interface NamedValues {
  name: string;
  values: ArrayLike<number>;
}

/** Grouped bars: one group per class, one bar per model (e.g. per-class F1 of oracle vs copycats). */
export function perClassBarsFigure(series: NamedValues[], classNames: readonly string[], opts: { title?: string; yTitle?: string } = {}): Figure {
  if (series.length === 0) throw new Error('perClassBarsFigure: series must not be empty');
  series.forEach((s) => {
    if (s.values.length !== classNames.length) {
      throw new Error(`perClassBarsFigure: series '${s.name}' has ${s.values.length} values, expected ${classNames.length} (one per class)`);
    }
  });
  return {
    data: series.map((s) => ({ type: 'bar', name: s.name, x: [...classNames], y: Array.from(s.values) })),
    layout: { title: titled(opts.title ?? 'Per-class values'), barmode: 'group', yaxis: { title: titled(opts.yTitle ?? '') } },
  };
}

/** Counts of each class index in `labels` (out-of-range labels are an error, not silently dropped). */
export function classCountsOf(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new Error(`labels[${i}] = ${l} is not a class index in 0..${numClasses - 1}`);
    counts[l]++;
  }
  return counts;
}

/** Histogram of (stolen) labels per class; counts are computed here so the figure JSON stays small. */
export function labelHistogramFigure(labels: ArrayLike<number>, classNames: readonly string[], opts: { title?: string; name?: string } = {}): Figure {
  const counts = classCountsOf(labels, classNames.length);
  return {
    data: [{ type: 'bar', name: opts.name ?? 'labels', x: [...classNames], y: counts, text: counts.map(String), textposition: 'auto' }],
    layout: { title: titled(opts.title ?? `Label histogram (${labels.length} images)`), yaxis: { title: titled('images') } },
  };
}

export interface XYSeries {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
}

/** Lines with markers, e.g. copycat accuracy against query budget; `logX` for budgets spanning decades. */
export function linePlotFigure(series: XYSeries[], opts: { title?: string; xTitle?: string; yTitle?: string; logX?: boolean } = {}): Figure {
  if (series.length === 0) throw new Error('linePlotFigure: series must not be empty');
  series.forEach((s) => {
    if (s.x.length !== s.y.length) throw new Error(`linePlotFigure: series '${s.name}' has ${s.x.length} x values but ${s.y.length} y values`);
  });
  return {
    data: series.map((s) => ({ type: 'scatter', mode: 'lines+markers', name: s.name, x: Array.from(s.x), y: Array.from(s.y) })),
    layout: {
      title: titled(opts.title ?? ''),
      xaxis: { title: titled(opts.xTitle ?? ''), type: opts.logX ? 'log' : 'linear' },
      yaxis: { title: titled(opts.yTitle ?? '') },
    },
  };
}

// ---- The experiments' figures ----------------------------------------------------------------------

/** The fields of a query-budget point (experiments/queryBudget.ts BudgetPoint) that its figure reads. */
export interface BudgetChartPoint {
  /** The series: an answer mode, or a way of spending the queries (random, active, semi, both). */
  mode: string;
  queries: number;
  performanceOverTarget: number;
  agreement: number;
  /** Agreement on NPD images no copy saw, when measured. */
  unseenNpdAgreement?: number | null;
}

/** The fields of a defence row (experiments/defences.ts DefenceRow) that its figure reads. */
export interface DefenceChartRow {
  defence: string;
  oracleAccuracy: number;
  performanceOverTarget: number;
}

/** 05: performance over target and agreement against the number of queries, one line per answer mode and measure. */
export function queryBudgetFigure<P extends BudgetChartPoint>(points: P[], pricePer1000: number): Figure {
  const modes = [...new Set(points.map((p) => p.mode))];
  if (modes.length === 0) throw new Error('queryBudgetFigure: no budget points to plot');
  const series = (key: 'performanceOverTarget' | 'agreement' | 'unseenNpdAgreement', label: string) => modes.map((m) => {
    const ps = points.filter((p) => p.mode === m && p[key] != null).sort((a, b) => a.queries - b.queries);
    return { name: `${m}: ${label}`, x: ps.map((p) => p.queries), y: ps.map((p) => 100 * (p[key] as number)) };
  }).filter((s) => s.x.length > 0);
  const unseen = series('unseenNpdAgreement', 'agreement on unseen NPD images');
  return linePlotFigure([...series('performanceOverTarget', 'performance over target'), ...series('agreement', 'agreement'), ...unseen], {
    title: `Copy quality vs queries (cost at $${pricePer1000}/1000)`, xTitle: 'queries (log scale)', yTitle: '%', logX: true,
  });
}

/** 06: what each defence costs honest users next to what the attacker still copies. */
export function defencesFigure<R extends DefenceChartRow>(rows: R[]): Figure {
  if (rows.length === 0) throw new Error('defencesFigure: no defence rows to plot');
  return {
    data: [
      { type: 'bar', name: 'oracle accuracy for honest users (%)', x: rows.map((r) => r.defence), y: rows.map((r) => 100 * r.oracleAccuracy) },
      { type: 'bar', name: 'copy performance over target (%)', x: rows.map((r) => r.defence), y: rows.map((r) => 100 * r.performanceOverTarget) },
    ],
    layout: { title: { text: 'Defences: cost to honest users vs protection' }, barmode: 'group', xaxis: { automargin: true }, yaxis: { title: { text: '%' } } },
  };
}

/** The fields of a suspect model (experiments/ownershipVerification.ts VerificationModel) that its figure reads. */
export interface VerificationChartModel {
  name: string;
  kind: string;
  scores: Record<string, Record<string, number>>;
}

/** 07: each fingerprint's score against the label-only queries asked, one line per suspect (copies solid, independent dashed). */
export function verificationFigure<M extends VerificationChartModel>(models: M[], fingerprint: string): Figure {
  const lines = models.filter((m) => m.scores[fingerprint]).map((m) => {
    const counts = Object.keys(m.scores[fingerprint]).map(Number).sort((a, b) => a - b);
    return { name: `${m.kind}: ${m.name}`, x: counts, y: counts.map((c) => 100 * m.scores[fingerprint][String(c)]), line: { dash: m.kind === 'copy' ? 'solid' : 'dash' } };
  });
  if (lines.length === 0) throw new Error(`verificationFigure: no model has scores for the fingerprint '${fingerprint}'`);
  return {
    data: lines.map((l) => ({ type: 'scatter', mode: 'lines+markers', ...l })),
    layout: { title: { text: `Ownership: agreement with the oracle on its ${fingerprint} fingerprint` }, xaxis: { title: { text: 'label-only queries to the suspect' }, type: 'log' }, yaxis: { title: { text: '%' } } },
  };
}
