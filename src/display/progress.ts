import * as cliProgress from 'cli-progress';
import { RichDisplay, tslabSink } from './notebook';

/**
 * One progress reporter for long loops (training steps, oracle queries, decoding): it rewrites ONE line
 * in place in a notebook (tslab display update) or a terminal (cli-progress), and prints sparse lines
 * (every `everyPercent` %, plus a heartbeat) when stdout is a log file, so no run ever prints thousands
 * of lines.
 */

export type ProgressMode = 'notebook' | 'tty' | 'lines' | 'silent';
export type ProgressFields = Record<string, number | string>;

export interface ProgressOptions {
  label?: string;
  /** What one unit is, for the rate ("img/s", "queries/s"); default "it". */
  unit?: string;
  /** Default: $COPYCAT_PROGRESS, else notebook under tslab, tty when the stream is a terminal, else lines. */
  mode?: ProgressMode;
  /** Lines mode: print when this many more percent are done (default 10). */
  everyPercent?: number;
  /** Lines mode: also print when this long passed since the last line, so logs show life (default 60 s). */
  heartbeatSeconds?: number;
  /** Notebook mode: at most one display update per this many ms (default 250). */
  minIntervalMs?: number;
  /** Where tty/lines output goes; default process.stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Units already done before this run (a resumed training or download): the count starts there, and
   * the rate and ETA count only the units done since, so a resume does not report millions of steps/s. */
  initial?: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

const MODES: ProgressMode[] = ['notebook', 'tty', 'lines', 'silent'];

function pickMode(opts: ProgressOptions, stream: { isTTY?: boolean }): ProgressMode {
  if (opts.mode) return opts.mode;
  const env = process.env.COPYCAT_PROGRESS;
  if (env) {
    if (!(MODES as string[]).includes(env)) throw new Error(`COPYCAT_PROGRESS='${env}': expected one of ${MODES.join(', ')}`);
    return env as ProgressMode;
  }
  if (tslabSink()) return 'notebook';
  return stream.isTTY ? 'tty' : 'lines';
}

/** 75 -> "1m15s", 3725 -> "1h02m", NaN/Infinity -> "?". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(4);
}

export function formatFields(fields: ProgressFields): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
}

export class Progress {
  readonly mode: ProgressMode;
  readonly total: number;
  private done: number;
  private fields: ProgressFields = {};
  private readonly start: number;
  private readonly initial: number;
  private readonly now: () => number;
  private readonly opts: ProgressOptions;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private bar?: cliProgress.SingleBar;
  private display?: RichDisplay;
  private lastPrintedPercent = -Infinity;
  private lastOutputAt = -Infinity;
  private lastPrintedDone = -1;
  private lastPrintedFields = '';
  private finished = false;
  /** Lines written in lines mode (for tests and curious users). */
  linesPrinted = 0;

  constructor(total: number, opts: ProgressOptions = {}) {
    if (!Number.isFinite(total) || total < 0) throw new Error(`Progress total must be a finite number >= 0, got ${total}`);
    this.total = total;
    const initial = opts.initial ?? 0;
    if (!Number.isFinite(initial) || initial < 0 || initial > total) throw new Error(`Progress initial must be within 0..${total}, got ${initial}`);
    this.initial = initial;
    this.done = initial;
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.stream = opts.stream ?? process.stdout;
    this.mode = pickMode(opts, this.stream);
    if (this.mode === 'notebook') {
      const sink = tslabSink();
      if (!sink) throw new Error("Progress mode 'notebook' needs a running tslab kernel");
      this.display = sink.newDisplay();
      this.display.text(this.line());
    } else if (this.mode === 'tty') {
      this.bar = new cliProgress.SingleBar(
        {
          format: `${opts.label ? opts.label + ' ' : ''}[{bar}] {percentage}% {value}/{total} ETA {eta_formatted} {extra}`,
          stream: this.stream,
          hideCursor: false,
          barsize: 24,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(total, initial, { extra: '' });
    }
  }

  /** Units per second since the start, not counting the `initial` ones. */
  get rate(): number {
    const secs = (this.now() - this.start) / 1000;
    return secs > 0 ? Math.max(0, this.done - this.initial) / secs : 0;
  }

  /** Seconds left at the current rate (Infinity before any progress). */
  get etaSeconds(): number {
    const r = this.rate;
    return r > 0 ? Math.max(0, this.total - this.done) / r : Infinity;
  }

  get value(): number {
    return this.done;
  }

  /** The status line: "label 420/1000 (42%) 35.1 it/s ETA 16s loss=0.6931". */
  line(): string {
    const pct = this.total > 0 ? Math.floor((100 * this.done) / this.total) : 100;
    const parts = [
      this.opts.label,
      `${this.done}/${this.total} (${pct}%)`,
      `${formatValue(this.rate)} ${this.opts.unit ?? 'it'}/s`,
      this.finished ? `took ${formatDuration((this.now() - this.start) / 1000)}` : `ETA ${formatDuration(this.etaSeconds)}`,
      formatFields(this.fields),
    ];
    return parts.filter((p) => p).join(' ');
  }

  /** Sets the absolute count (clamped to total) and merges `fields` (e.g. loss, cost). */
  update(done: number, fields?: ProgressFields): void {
    if (this.finished) return;
    this.done = Math.min(Math.max(0, done), this.total);
    if (fields) Object.assign(this.fields, fields);
    this.render(false);
  }

  /** Adds `n` to the count. */
  tick(n = 1, fields?: ProgressFields): void {
    this.update(this.done + n, fields);
  }

  /** Final line; safe to call twice. The count stays where it is (an aborted loop says so). */
  finish(fields?: ProgressFields): void {
    if (this.finished) return;
    if (fields) Object.assign(this.fields, fields);
    this.finished = true;
    this.render(true);
    if (this.bar) {
      this.bar.stop();
      this.stream.write(`${this.line()}\n`);
    }
  }

  private render(final: boolean): void {
    const t = this.now();
    if (this.mode === 'silent') return;
    if (this.mode === 'notebook') {
      if (final || t - this.lastOutputAt >= (this.opts.minIntervalMs ?? 250)) {
        this.display?.text(this.line());
        this.lastOutputAt = t;
      }
    } else if (this.mode === 'tty') {
      if (!final) this.bar?.update(this.done, { extra: `${formatValue(this.rate)} ${this.opts.unit ?? 'it'}/s ${formatFields(this.fields)}` });
    } else {
      const pct = this.total > 0 ? (100 * this.done) / this.total : 100;
      const step = this.opts.everyPercent ?? 10;
      const heartbeat = (this.opts.heartbeatSeconds ?? 60) * 1000;
      const due = pct >= this.lastPrintedPercent + step || (t - this.lastOutputAt >= heartbeat && this.lastOutputAt > -Infinity);
      // A finish right after a printed line with the same count and fields would only repeat it.
      const news = this.done !== this.lastPrintedDone || formatFields(this.fields) !== this.lastPrintedFields;
      if (due || (final && news)) {
        this.stream.write(`${this.line()}\n`);
        this.linesPrinted++;
        this.lastPrintedDone = this.done;
        this.lastPrintedFields = formatFields(this.fields);
        this.lastOutputAt = t;
        if (due) this.lastPrintedPercent = Math.floor(pct / step) * step;
      }
    }
  }
}

/** `const p = progress(n, { label: 'query', unit: 'img' }); ... p.tick(batch, { cost }); p.finish();` */
export function progress(total: number, opts: ProgressOptions = {}): Progress {
  return new Progress(total, opts);
}
