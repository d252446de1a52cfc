import * as path from 'path';

/**
 * Rich output for notebook cells: HTML, PNG, markdown tables and in-place displays under the tslab
 * kernel, plain text anywhere else (node scripts, mocha, CI logs), so the same library call works in both.
 */

/** The part of tslab's `Display` we use. Declared here so nothing loads tslab outside a kernel. */
export interface RichDisplay {
  html(s: string): void;
  markdown(s: string): void;
  png(b: Uint8Array): void;
  text(s: string): void;
}

/** What a kernel offers: one-shot display, updatable displays, and (optionally) multi-MIME outputs. */
export interface NotebookSink {
  display: RichDisplay;
  newDisplay(): RichDisplay;
  /** One output carrying several MIME types (e.g. HTML + plotly JSON); absent when unavailable. */
  mimeBundle?: (data: Record<string, string>) => void;
}

let override: NotebookSink | null | undefined;

/**
 * Replaces kernel detection: a sink to capture outputs (tests, custom front ends), `null` to force plain
 * text, `undefined` to detect again.
 */
export function setNotebookSink(sink: NotebookSink | null | undefined): void {
  override = sink;
}

/**
 * The running tslab kernel, if this process is one. tslab's public module throws "Not ready" outside a
 * kernel and loading it pulls in TypeScript and zeromq, so instead of `require('tslab')` we look for
 * tslab's jupyter module in the module cache: it is loaded (and has a display writer) only inside a kernel
 * that has started executing a cell. Looking it up by path also finds a kernel started from another
 * tslab install than the one under our node_modules.
 */
export function tslabSink(): NotebookSink | undefined {
  if (override !== undefined) return override ?? undefined;
  if (process.env.COPYCAT_DISPLAY === 'text') return undefined;
  const suffix = `${path.sep}tslab${path.sep}dist${path.sep}jupyter.js`;
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!file.endsWith(suffix) || !mod) continue;
    const jupyter = mod.exports as { lastWriteDisplayData?: ((d: unknown, update: boolean) => void) | null };
    if (typeof jupyter.lastWriteDisplayData !== 'function') continue;
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const pub = require(path.join(path.dirname(file), 'public.js')) as NotebookSink;
    return {
      display: pub.display,
      newDisplay: () => pub.newDisplay(),
      mimeBundle: (data) => {
        const write = jupyter.lastWriteDisplayData;
        if (typeof write !== 'function') throw new Error('tslab kernel is not executing a cell');
        write({ data, metadata: {}, transient: {} }, false);
      },
    };
  }
  return undefined;
}

/** True inside a tslab kernel (rich outputs), false in plain Node. */
export function inNotebook(): boolean {
  return tslabSink() !== undefined;
}

/** Shows HTML in a notebook; elsewhere prints `text` (or a one-line note that HTML was skipped). */
export function showHtml(html: string, text?: string): void {
  const sink = tslabSink();
  if (sink) sink.display.html(html);
  else console.log(text ?? `[html output, ${html.length} chars: shown in a notebook only]`);
}

/** Shows markdown in a notebook; elsewhere prints it (markdown reads fine as text). */
export function showMarkdown(md: string): void {
  const sink = tslabSink();
  if (sink) sink.display.markdown(md);
  else console.log(md);
}

/** Shows a PNG in a notebook; elsewhere prints its size and where it was saved, if it was. */
export function showPng(png: Uint8Array, savedAs?: string): void {
  const sink = tslabSink();
  if (sink) sink.display.png(png);
  else console.log(`[png ${png.length} bytes${savedAs ? `, saved as ${savedAs}` : ''}]`);
}

export type TableCell = string | number | boolean | null | undefined;
export type TableRow = Record<string, TableCell>;

export interface TableOptions {
  /** Column order (default: keys of the first row, then new keys in order of appearance). */
  columns?: string[];
  /** Decimals for non-integer numbers (default 4). */
  digits?: number;
}

function tableColumns(rows: TableRow[], columns?: string[]): string[] {
  if (columns) return columns;
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function cellText(v: TableCell, digits: number): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(digits);
  return String(v);
}

/** GitHub-flavoured markdown table; `|` and newlines inside cells are escaped so columns stay aligned. */
export function markdownTable(rows: TableRow[], opts: TableOptions = {}): string {
  const cols = tableColumns(rows, opts.columns);
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const digits = opts.digits ?? 4;
  const lines = [
    `| ${cols.map(esc).join(' | ')} |`,
    `| ${cols.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${cols.map((c) => esc(cellText(r[c], digits))).join(' | ')} |`),
  ];
  return lines.join('\n');
}

/** Fixed-width text table for terminals and logs; numbers right-aligned. */
export function textTable(rows: TableRow[], opts: TableOptions = {}): string {
  const cols = tableColumns(rows, opts.columns);
  const digits = opts.digits ?? 4;
  const cells = rows.map((r) => cols.map((c) => cellText(r[c], digits).replace(/\r?\n/g, ' ')));
  const widths = cols.map((c, j) => Math.max(c.length, ...cells.map((row) => row[j].length)));
  const numeric = cols.map((c) => rows.length > 0 && rows.every((r) => typeof r[c] === 'number' || r[c] == null));
  const fmt = (row: string[]) =>
    row.map((s, j) => (numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]))).join('  ').trimEnd();
  return [fmt(cols), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(fmt)].join('\n');
}

/** A table as markdown in a notebook, as aligned text elsewhere. */
export function showTable(rows: TableRow[], opts: TableOptions = {}): void {
  const sink = tslabSink();
  if (sink) sink.display.markdown(markdownTable(rows, opts));
  else console.log(textTable(rows, opts));
}
