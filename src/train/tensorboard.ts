/**
 * TensorBoard event files for a training: one scalar per tag per epoch (step = epoch), so TensorBoard
 * pointed at a runs folder overlays the curves of every training in it (`npm run board`,
 * docs/tensorboard.md). Writing event files needs TensorFlow's own summary ops, i.e. the native
 * backend; on wasm/cpu the writer is a no-op that says once why there are no event files.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../io';
import type { EpochRecord } from './train';

export interface EpochSummaries {
  /** Writes one epoch's scalars. */
  onEpoch(r: EpochRecord): void;
  /** Flushes and releases. */
  close(): void;
  /** The folder written, or undefined when the backend cannot write event files. */
  readonly dir?: string;
}

/** The scalar tags written per epoch; `test/*` only when the epoch was validated. */
export const EPOCH_TAGS = {
  trainLoss: 'train/loss',
  trainAccuracy: 'train/accuracy',
  testLoss: 'test/loss',
  testAccuracy: 'test/accuracy',
  emaTestLoss: 'test/ema_loss',
  emaTestAccuracy: 'test/ema_accuracy',
  learningRate: 'learning_rate',
  imagesPerSecond: 'throughput/images_per_second',
  epochSeconds: 'throughput/epoch_seconds',
} as const;

/** The hyper-parameters as text (TensorBoard's Text tab), and beside the events as JSON. */
export const HPARAMS_TEXT_TAG = 'hparams';
export const HPARAMS_JSON = 'hparams.json';

/**
 * The parts of tfjs-node's NodeJSKernelBackend used here. Typed structurally so this file never
 * imports @tensorflow/tfjs-node (it may be absent, or fail to load, on wasm/cpu machines): the backend
 * object is taken from tf.backend() once the native backend is the active one, as src/platform/backend.ts set it.
 */
interface NativeBackend {
  binding: {
    TF_ATTR_STRING: number;
    TF_ATTR_TYPE: number;
    TF_INT64: number;
    TF_FLOAT: number;
    TF_STRING: number;
    createTensor(shape: number[], dtype: number, values: Int32Array): number;
    deleteTensor(id: number): void;
    executeOp(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): unknown[];
  };
  executeSingleOutput(name: string, attrs: OpAttr[], inputs: tf.Tensor[]): tf.Tensor;
  executeMultipleOutputs(name: string, attrs: OpAttr[], inputs: tf.Tensor[], numOutputs: number): tf.Tensor[];
  createSummaryFileWriter(handle: tf.Tensor, logdir: string, maxQueue?: number, flushMillis?: number, filenameSuffix?: string): void;
  writeScalarSummary(handle: tf.Tensor, step: number, name: string, value: number): void;
  flushSummaryWriter(handle: tf.Tensor): void;
  /** Private in tfjs-node's typings; needed to feed WriteSummary (see writeTensorSummary). */
  getInputTensorIds(inputs: tf.Tensor[]): number[];
}
interface OpAttr {
  name: string;
  type: number;
  value: string | number;
}

const REQUIRED_METHODS = ['executeSingleOutput', 'executeMultipleOutputs', 'createSummaryFileWriter', 'writeScalarSummary', 'flushSummaryWriter'] as const;

/** The native backend object if it is the active one and has the summary methods, else why not. */
function nativeBackend(): NativeBackend | string {
  const name = tf.getBackend();
  if (name !== 'tensorflow') {
    return `the '${name}' backend has no TensorFlow summary ops (event files need the native backend: npm run setup:tensorflow)`;
  }
  const be = tf.backend() as unknown as Partial<Record<string, unknown>>;
  const missing = REQUIRED_METHODS.filter((m) => typeof be[m] !== 'function');
  if (missing.length || typeof be.binding !== 'object') {
    return `this tfjs-node build lacks ${missing.join(', ') || 'its binding'}`;
  }
  return be as unknown as NativeBackend;
}

/**
 * Open writers by folder. One TensorFlow summary-writer resource per folder and process, shared by
 * reference count: two writers on one folder would otherwise each close the other's resource.
 */
const open = new Map<string, { handle: tf.Tensor; refs: number }>();
let explainedNoOp = false;

/**
 * Opens the writer resource for `dir` without tf.node.summaryFileWriter(): that helper caches its
 * writers for the life of the process and never closes them, and leaks the five tensors it creates per
 * folder (measured: tf.memory().numTensors +5), while a notebook session trains many variants, each
 * with its own folder. Same ops, but closable: the handle is disposed and the event file closed on close().
 */
function acquire(be: NativeBackend, dir: string): tf.Tensor {
  const held = open.get(dir);
  if (held) {
    held.refs++;
    return held.handle;
  }
  // Resource name distinct from tfjs-node's own ('logdir:<dir>'), so closing ours never closes a writer
  // someone opened with tf.node.summaryFileWriter on the same folder.
  const handle = be.executeSingleOutput('SummaryWriter', [
    { name: 'shared_name', type: be.binding.TF_ATTR_STRING, value: `copycat:${dir}` },
    { name: 'container', type: be.binding.TF_ATTR_STRING, value: '' },
  ], []);
  try {
    // tidy: createSummaryFileWriter makes four scalar inputs (logdir, queue, flush period, suffix) and
    // disposes none of them. The handle was made outside, so it survives.
    tf.tidy(() => be.createSummaryFileWriter(handle, dir));
  } catch (err) {
    handle.dispose();
    throw err;
  }
  open.set(dir, { handle, refs: 1 });
  return handle;
}

function release(be: NativeBackend, dir: string): void {
  const held = open.get(dir);
  if (!held) return;
  be.flushSummaryWriter(held.handle);
  if (--held.refs > 0) return;
  open.delete(dir);
  try {
    // Flushes, closes the event file and removes the resource (tfjs-node has no wrapper for this op).
    be.executeMultipleOutputs('CloseSummaryWriter', [], [held.handle], 0);
  } finally {
    held.handle.dispose();
  }
}

// ---- protobuf, just the few messages TensorBoard's text and hparams plugins read --------------------

/** Field (number, wire type) key, then the value; proto3 encoding, enough for the messages below. */
class Proto {
  private readonly parts: Buffer[] = [];
  private varint(n: number): void {
    const bytes: number[] = [];
    while (n > 0x7f) {
      bytes.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    bytes.push(n);
    this.parts.push(Buffer.from(bytes));
  }
  bytes(field: number, value: Uint8Array | string): this {
    const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    this.varint((field << 3) | 2);
    this.varint(b.length);
    this.parts.push(b);
    return this;
  }
  double(field: number, value: number): this {
    this.varint((field << 3) | 1);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.parts.push(b);
    return this;
  }
  uint(field: number, value: number): this {
    this.varint(field << 3);
    this.varint(value);
    return this;
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** tensorboard.SummaryMetadata { plugin_data { plugin_name, content } }. */
function summaryMetadata(plugin: string, content?: Uint8Array): Buffer {
  const pluginData = new Proto().bytes(1, plugin);
  if (content?.length) pluginData.bytes(2, content);
  return new Proto().bytes(1, pluginData.finish()).finish();
}

/** Scalar hyper-parameter values: what the HParams dashboard can show and filter on. */
export type HParamValue = number | string | boolean;

/**
 * Nested settings as dotted keys ({train: {lr: 0.1}} → 'train.lr'), arrays as JSON text, null and
 * undefined left out: the HParams dashboard takes one number, string or bool per name.
 */
export function flattenHParams(hparams: Record<string, unknown>, prefix = '', out: Record<string, HParamValue> = {}): Record<string, HParamValue> {
  for (const [k, v] of Object.entries(hparams)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v === null || v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[key] = v;
    else if (typeof v === 'bigint') out[key] = Number(v);
    else if (Array.isArray(v)) out[key] = JSON.stringify(v);
    else if (typeof v === 'object') flattenHParams(v as Record<string, unknown>, key, out);
  }
  return out;
}

/**
 * The hparams plugin's session start (tag "_hparams_/session_start_info"), as tensorboard's
 * plugins/hparams/summary_v2.py hparams_pb() writes it: HParamsPluginData { version 0,
 * session_start_info { hparams map<string, google.protobuf.Value>, start_time_secs } }.
 */
function hparamsSessionStart(flat: Record<string, HParamValue>, startSeconds: number): Buffer {
  const start = new Proto();
  for (const name of Object.keys(flat).sort()) {
    const v = flat[name];
    const value = new Proto();
    if (typeof v === 'number') value.double(2, v);
    else if (typeof v === 'string') value.bytes(3, v);
    else value.uint(4, v ? 1 : 0);
    start.bytes(1, new Proto().bytes(1, name).bytes(2, value.finish()).finish());
  }
  start.double(5, startSeconds);
  return new Proto().bytes(3, start.finish()).finish(); // version 0 is proto3's default: not written
}

/** A markdown table of the hyper-parameters for the Text tab. */
function hparamsMarkdown(flat: Record<string, HParamValue>): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const rows = Object.keys(flat).sort().map((k) => `| ${cell(k)} | ${cell(String(flat[k]))} |`);
  return ['| hyper-parameter | value |', '|---|---|', ...rows].join('\n');
}

/**
 * One summary of any plugin through TensorFlow's generic WriteSummary op, the way tfjs-node writes its
 * histograms (it wraps only scalar and histogram summaries; neither text nor hparams). Step is int64,
 * which TF.js tensors cannot hold: it is created natively and deleted after the op.
 */
function writeTensorSummary(be: NativeBackend, handle: tf.Tensor, step: number, tag: string, value: () => tf.Tensor, metadata: Buffer): void {
  if (!Number.isInteger(step) || step < 0 || step > 0x7fffffff) throw new Error(`summary step must be an int32-sized integer, got ${step}`);
  if (os.endianness() !== 'LE') throw new Error('int64 summary steps are encoded little-endian only');
  tf.tidy(() => {
    const t = value();
    const ids = be.getInputTensorIds([handle, t, tf.scalar(tag, 'string'), tf.scalar(metadata, 'string')]);
    const stepId = be.binding.createTensor([], be.binding.TF_INT64, new Int32Array([step, 0]));
    try {
      const dtype = t.dtype === 'string' ? be.binding.TF_STRING : be.binding.TF_FLOAT;
      be.binding.executeOp('WriteSummary', [{ name: 'T', type: be.binding.TF_ATTR_TYPE, value: dtype }], [ids[0], stepId, ids[1], ids[2], ids[3]], 0);
    } finally {
      be.binding.deleteTensor(stepId);
    }
  });
}

/**
 * The hyper-parameters as a text summary and as an hparams-plugin session, at step 0. tfjs-node has no
 * writer for either (checked: its SummaryFileWriter has scalar() and histogram() only), so they go
 * through WriteSummary with the plugins' metadata; that uses tfjs-node internals (getInputTensorIds), so
 * a failure only costs these two summaries: hparams.json beside the events always holds the same data.
 */
function writeHParams(be: NativeBackend, handle: tf.Tensor, flat: Record<string, HParamValue>, log: (s: string) => void): void {
  if (typeof be.getInputTensorIds !== 'function' || typeof be.binding.executeOp !== 'function') {
    log(`TensorBoard: this tfjs-node build cannot write text/hparams summaries; hyper-parameters are in ${HPARAMS_JSON} only`);
    return;
  }
  try {
    writeTensorSummary(be, handle, 0, HPARAMS_TEXT_TAG, () => tf.scalar(hparamsMarkdown(flat), 'string'), summaryMetadata('text'));
    writeTensorSummary(be, handle, 0, '_hparams_/session_start_info', () => tf.tensor1d([], 'float32'),
      summaryMetadata('hparams', hparamsSessionStart(flat, Date.now() / 1000)));
  } catch (err) {
    log(`TensorBoard: text/hparams summaries not written (${err instanceof Error ? err.message : String(err)}); hyper-parameters are in ${HPARAMS_JSON}`);
  }
}

const NO_OP: EpochSummaries = { onEpoch() {}, close() {} };

/**
 * Opens TensorBoard summaries for one training in `dir` (created if needed): `hparams.json`, and event
 * files holding the hyper-parameters (step 0) and EPOCH_TAGS per epoch (step = epoch). Call onEpoch from
 * train()'s onEpoch, close() when training ends (also on failure). Every epoch is flushed, so a running
 * TensorBoard shows it at once and a killed process loses nothing written.
 *
 * A resumed training appends a new event file to the same folder, which TensorBoard reads as one run;
 * the step-0 summaries are then not written again: a step going back to 0 would make TensorBoard
 * discard the earlier epochs as orphaned by a restart.
 */
export function epochSummaries(dir: string, hparams: Record<string, unknown>, opts: { log?: (s: string) => void } = {}): EpochSummaries {
  const log = opts.log ?? ((s: string) => console.log(s));
  const be = nativeBackend();
  if (typeof be === 'string') {
    if (!explainedNoOp) {
      explainedNoOp = true;
      log(`TensorBoard: no event files are written: ${be}`);
    }
    return NO_OP;
  }
  const abs = path.resolve(dir);
  fs.mkdirSync(abs, { recursive: true });
  const resumed = fs.readdirSync(abs).some((f) => f.startsWith('events.out.tfevents.'));
  writeFileAtomic(path.join(abs, HPARAMS_JSON), `${JSON.stringify(hparams, null, 2)}\n`);
  const handle = acquire(be, abs);
  let closed = false;
  try {
    if (!resumed) writeHParams(be, handle, flattenHParams(hparams), log);
    be.flushSummaryWriter(handle);
  } catch (err) {
    release(be, abs);
    throw err;
  }
  return {
    dir: abs,
    onEpoch(r: EpochRecord): void {
      if (closed) throw new Error(`TensorBoard summaries for ${abs} were closed before epoch ${r.epoch}`);
      const put = (tag: string, v: number | undefined) => {
        if (v !== undefined) be.writeScalarSummary(handle, r.epoch, tag, v);
      };
      put(EPOCH_TAGS.trainLoss, r.loss);
      put(EPOCH_TAGS.trainAccuracy, r.accuracy);
      put(EPOCH_TAGS.testLoss, r.valLoss);
      put(EPOCH_TAGS.testAccuracy, r.valAccuracy);
      put(EPOCH_TAGS.emaTestLoss, r.emaValLoss);
      put(EPOCH_TAGS.emaTestAccuracy, r.emaValAccuracy);
      put(EPOCH_TAGS.learningRate, r.learningRate);
      put(EPOCH_TAGS.imagesPerSecond, r.imagesPerSecond);
      put(EPOCH_TAGS.epochSeconds, r.seconds);
      be.flushSummaryWriter(handle);
    },
    close(): void {
      if (closed) return;
      closed = true;
      release(be, abs);
    },
  };
}
