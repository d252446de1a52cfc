import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { loadModel, saveModel, writeFileAtomic } from '../io';

/**
 * Per-epoch checkpoints. Layout of a checkpoint directory:
 *   latest.json                 {"epoch": k, "dir": "epoch-000k"}, replaced atomically
 *   epoch-000k/model/           model.json + weights.bin (src/io.ts format)
 *   epoch-000k/optimizer.bin    optimizer slots (iteration count, momentum or Adam moments)
 *   epoch-000k/optimizer.json   their weight specs
 *   epoch-000k/state.json       caller state (config, history, ...)
 *   epoch-000k/average.bin/json only with a weight average (src/train/ema.ts): its tensors
 * An epoch folder is written under a temporary name and renamed when complete; only then does
 * latest.json move to it, so a kill at any moment leaves the previous checkpoint intact.
 */

export const LATEST = 'latest.json';

/** A tensor with its name, as tf.io.encodeWeights takes them. */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

export interface LoadedCheckpoint<S> {
  epoch: number;
  state: S;
  model: tf.LayersModel;
  /** Optimizer weights in getWeights() order; the caller disposes them. */
  optimizerWeights: { name: string; tensor: tf.Tensor }[];
  /** The weight average saved with the checkpoint, if any; the caller disposes it. */
  average?: NamedTensor[];
}

/** Writes named tensors as <base>.bin plus <base>.json (specs, size, sha256). */
async function writeNamed(dir: string, base: string, named: NamedTensor[], className?: string): Promise<void> {
  const { data, specs } = await tf.io.encodeWeights(named);
  const bin = new Uint8Array(data);
  writeFileAtomic(path.join(dir, `${base}.bin`), bin);
  const sha256 = crypto.createHash('sha256').update(bin).digest('hex');
  writeFileAtomic(path.join(dir, `${base}.json`), JSON.stringify({ ...(className ? { className } : {}), specs, bytes: bin.byteLength, sha256 }));
}

/** Reads what writeNamed wrote, checking size and hash; throws naming the file. */
function readNamed(dir: string, base: string): NamedTensor[] {
  const jsonPath = path.join(dir, `${base}.json`);
  let meta: { specs: tf.io.WeightsManifestEntry[]; bytes: number; sha256: string };
  try {
    meta = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`checkpoint: cannot read ${jsonPath} (${(e as Error).message})`);
  }
  const binPath = path.join(dir, `${base}.bin`);
  const bin = fs.readFileSync(binPath);
  if (bin.byteLength !== meta.bytes || crypto.createHash('sha256').update(bin).digest('hex') !== meta.sha256) {
    throw new Error(`checkpoint: ${binPath} does not match ${jsonPath} (corrupt checkpoint)`);
  }
  const buf = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buf, meta.specs);
  return meta.specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
}

function epochDirName(epoch: number): string {
  return `epoch-${String(epoch).padStart(4, '0')}`;
}

export function hasCheckpoint(dir: string): boolean {
  return fs.existsSync(path.join(dir, LATEST));
}

export async function saveCheckpoint<S>(
  dir: string,
  epoch: number,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  state: S,
  average?: NamedTensor[],
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const name = epochDirName(epoch);
  const tmp = path.join(dir, `${name}.tmp-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp);
  await saveModel(model, path.join(tmp, 'model'));
  const named = await optimizer.getWeights();
  try {
    await writeNamed(tmp, 'optimizer', named, optimizer.getClassName());
  } finally {
    // getWeights() makes a fresh scalar for the iteration count; the slots are the live variables.
    named.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
  }
  if (average) await writeNamed(tmp, 'average', average);
  writeFileAtomic(path.join(tmp, 'state.json'), JSON.stringify(state, null, 1));
  const final = path.join(dir, name);
  fs.rmSync(final, { recursive: true, force: true });
  fs.renameSync(tmp, final);
  writeFileAtomic(path.join(dir, LATEST), JSON.stringify({ epoch, dir: name }));
  // Older epochs and leftovers of killed writes are no longer reachable from latest.json.
  for (const entry of fs.readdirSync(dir)) {
    if (entry !== name && entry.startsWith('epoch-')) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
  }
}

export async function loadCheckpoint<S>(dir: string): Promise<LoadedCheckpoint<S>> {
  const latestPath = path.join(dir, LATEST);
  let latest: { epoch: number; dir: string };
  try {
    latest = JSON.parse(fs.readFileSync(latestPath, 'utf8'));
  } catch (e) {
    throw new Error(`checkpoint: cannot read ${latestPath} (${(e as Error).message}); delete the checkpoint directory to start over`);
  }
  if (!Number.isInteger(latest.epoch) || typeof latest.dir !== 'string') {
    throw new Error(`checkpoint: ${latestPath} must hold {"epoch": <int>, "dir": <name>}, got ${JSON.stringify(latest)}`);
  }
  const epochDir = path.join(dir, latest.dir);
  const statePath = path.join(epochDir, 'state.json');
  let state: S;
  try {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new Error(`checkpoint: cannot read ${statePath} (${(e as Error).message})`);
  }
  const model = await loadModel(path.join(epochDir, 'model'));
  let optimizerWeights: NamedTensor[];
  let average: NamedTensor[] | undefined;
  try {
    optimizerWeights = readNamed(epochDir, 'optimizer');
    if (fs.existsSync(path.join(epochDir, 'average.json'))) {
      try {
        average = readNamed(epochDir, 'average');
      } catch (e) {
        optimizerWeights.forEach((w) => w.tensor.dispose());
        throw e;
      }
    }
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { epoch: latest.epoch, state, model, optimizerWeights, ...(average ? { average } : {}) };
}
