import { strict as assert } from 'assert';
import { Writable } from 'stream';
import { formatDuration, formatFields, progress } from '../src/display/progress';
import { trainingProgress } from '../src/display/trainingProgress';
import type { BatchProgress } from '../src/train';
import { NotebookSink, RichDisplay, setNotebookSink } from '../src/display/notebook';

/** A non-TTY stream collecting written lines. */
function sinkStream(isTTY = false): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } }) as Writable & { isTTY?: boolean };
  stream.isTTY = isTTY;
  return { stream, text: () => chunks.join('') };
}

/** A manual clock in ms: reading it never advances it, `advance` does. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => { t += ms; } };
}

describe('progress', () => {
  afterEach(() => setNotebookSink(undefined));

  it('non-TTY: 1000 updates print about one line per 10 %, never hundreds', () => {
    const out = sinkStream();
    const c = manualClock();
    const p = progress(1000, { label: 'query', unit: 'img', stream: out.stream, now: c.now });
    assert.equal(p.mode, 'lines');
    for (let i = 0; i < 1000; i++) {
      c.advance(2);
      p.tick(1, { loss: 1 / (i + 1) });
    }
    p.finish();
    const lines = out.text().trimEnd().split('\n');
    assert.ok(lines.length >= 10 && lines.length <= 12, `${lines.length} lines:\n${lines.join('\n')}`);
    assert.equal(p.linesPrinted, lines.length);
    assert.match(lines[lines.length - 1], /^query 1000\/1000 \(100%\) \d+(\.\d+)? img\/s ETA 0s loss=0\.001000$/);
    assert.match(lines[5], /query 500\/1000 \(50%\)/);
  });

  it('non-TTY: a heartbeat line appears when a step takes longer than heartbeatSeconds', () => {
    const out = sinkStream();
    const c = manualClock();
    const p = progress(100, { stream: out.stream, now: c.now, heartbeatSeconds: 60, everyPercent: 50 });
    for (let i = 0; i < 10; i++) {
      c.advance(30_000);
      p.tick();
    }
    // 10 ticks of 30 s: the first tick prints, then every second tick is 60 s after the last line.
    assert.equal(out.text().trimEnd().split('\n').length, 5);
  });

  it('rate and ETA come from the clock; an aborted loop finishes with its real count', () => {
    const out = sinkStream();
    const c = manualClock();
    const p = progress(200, { stream: out.stream, now: c.now });
    assert.equal(p.etaSeconds, Infinity);
    c.advance(2000);
    p.update(50);
    assert.equal(p.rate, 25);
    assert.equal(p.etaSeconds, 6);
    assert.equal(p.value, 50);
    p.update(5000); // clamped
    assert.equal(p.value, 200);
    const q = progress(10, { stream: out.stream, now: c.now });
    c.advance(3000);
    q.update(3);
    q.finish({ status: 'aborted' });
    q.finish();
    assert.match(out.text(), /3\/10 \(30%\) .* took 3s status=aborted\n$/);
  });

  it('a resumed run (initial) counts rate and ETA from the units done since, not from zero', () => {
    const out = sinkStream();
    const c = manualClock();
    const p = progress(1000, { stream: out.stream, now: c.now, unit: 'step', initial: 600 });
    assert.equal(p.value, 600);
    c.advance(1);
    p.update(601);
    assert.equal(p.rate, 1000); // 1 step in 1 ms, not 601 steps in 1 ms
    c.advance(9999);
    p.update(700);
    assert.equal(p.rate, 10);
    assert.equal(p.etaSeconds, 30);
    assert.throws(() => progress(10, { initial: 11, mode: 'silent' }), /initial must be within 0\.\.10, got 11/);
  });

  it('trainingProgress: a run resumed at epoch 3 starts its count there and rates only its own steps', () => {
    const out = sinkStream();
    const c = manualClock();
    const t = trainingProgress('copycat', { stream: out.stream, now: c.now, mode: 'lines' });
    const at = (epoch: number, batch: number): BatchProgress => ({ epoch, epochs: 4, batch, batches: 10, loss: 1, batchLoss: 1, learningRate: 0.1, imagesPerSecond: 5, etaSeconds: 1 });
    t.onBatch(at(3, 1)); // the first step this process reports: the line starts there
    c.advance(2000);
    t.onBatch(at(3, 2));
    t.finish();
    const lines = out.text().trimEnd().split('\n');
    assert.match(lines[0], /^copycat 21\/40 \(52%\) /);
    // 22 of 40 steps counted, but only 1 of them in the 2 s since: 0.5 step/s, not 11.
    assert.match(lines[lines.length - 1], /^copycat 22\/40 \(55%\) 0\.5000 step\/s took 2s /);
  });

  it('notebook mode rewrites one display (throttled), the last update always shown', () => {
    const updates: string[] = [];
    let displays = 0;
    const d = (): RichDisplay => {
      displays++;
      return { html: () => undefined, markdown: () => undefined, png: () => undefined, text: (s) => updates.push(s) };
    };
    const sink: NotebookSink = { display: d(), newDisplay: d };
    displays = 0;
    setNotebookSink(sink);
    const c = manualClock();
    const p = progress(1000, { label: 'train', now: c.now, minIntervalMs: 250 });
    assert.equal(p.mode, 'notebook');
    for (let i = 0; i < 1000; i++) {
      c.advance(10);
      p.tick();
    }
    p.finish({ loss: 0.5 });
    assert.equal(displays, 1, 'one display, updated in place');
    assert.equal(updates.length, 1 + 40 + 1, 'initial line, one update per 250 ms of 10 s, final');
    assert.match(updates[updates.length - 1], /^train 1000\/1000 \(100%\) 100 it\/s took 10s loss=0\.5000$/);
  });

  it('TTY mode draws with cli-progress and ends with one summary line', () => {
    const out = sinkStream(true);
    const p = progress(50, { label: 'decode', stream: out.stream });
    assert.equal(p.mode, 'tty');
    for (let i = 0; i < 50; i++) p.tick();
    p.finish();
    assert.match(out.text(), /decode 50\/50 \(100%\)/);
  });

  it('modes can be forced by env; bad values and totals are clear errors', () => {
    const prev = process.env.COPYCAT_PROGRESS;
    try {
      process.env.COPYCAT_PROGRESS = 'silent';
      const out = sinkStream();
      const p = progress(10, { stream: out.stream });
      p.tick(10);
      p.finish();
      assert.equal(out.text(), '');
      process.env.COPYCAT_PROGRESS = 'loud';
      assert.throws(() => progress(10), /COPYCAT_PROGRESS='loud'/);
    } finally {
      if (prev === undefined) delete process.env.COPYCAT_PROGRESS;
      else process.env.COPYCAT_PROGRESS = prev;
    }
    assert.throws(() => progress(-1), /total must be a finite number/);
    assert.throws(() => progress(5, { mode: 'notebook' }), /needs a running tslab kernel/);
  });

  it('formats durations and fields', () => {
    assert.equal(formatDuration(5), '5s');
    assert.equal(formatDuration(75), '1m15s');
    assert.equal(formatDuration(3725), '1h02m');
    assert.equal(formatDuration(Infinity), '?');
    assert.equal(formatFields({ loss: 0.123456, n: 3, cost: '$1.20' }), 'loss=0.1235 n=3 cost=$1.20');
  });
});
