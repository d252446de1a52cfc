import { Figure, linePlotFigure } from '../plots';
import type { DefenceRow } from './defences';
import type { BudgetPoint } from './queryBudget';

/** 05: performance over target and agreement against the number of queries, one line per answer mode and measure. */
export function queryBudgetFigure(points: BudgetPoint[], pricePer1000: number): Figure {
  const modes = [...new Set(points.map((p) => p.mode))];
  if (modes.length === 0) throw new Error('queryBudgetFigure: no budget points to plot');
  const series = (key: 'performanceOverTarget' | 'agreement', label: string) => modes.map((m) => {
    const ps = points.filter((p) => p.mode === m).sort((a, b) => a.queries - b.queries);
    return { name: `${m}: ${label}`, x: ps.map((p) => p.queries), y: ps.map((p) => 100 * p[key]) };
  });
  return linePlotFigure([...series('performanceOverTarget', 'performance over target'), ...series('agreement', 'agreement')], {
    title: `Copy quality vs queries (cost at $${pricePer1000}/1000)`, xTitle: 'queries (log scale)', yTitle: '%', logX: true,
  });
}

/** 06: what each defence costs honest users next to what the attacker still copies. */
export function defencesFigure(rows: DefenceRow[]): Figure {
  if (rows.length === 0) throw new Error('defencesFigure: no defence rows to plot');
  return {
    data: [
      { type: 'bar', name: 'oracle accuracy for honest users (%)', x: rows.map((r) => r.defence), y: rows.map((r) => 100 * r.oracleAccuracy) },
      { type: 'bar', name: 'copy performance over target (%)', x: rows.map((r) => r.defence), y: rows.map((r) => 100 * r.performanceOverTarget) },
    ],
    layout: { title: { text: 'Defences: cost to honest users vs protection' }, barmode: 'group', xaxis: { automargin: true }, yaxis: { title: { text: '%' } } },
  };
}
