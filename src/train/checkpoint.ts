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
 * An epoch folder is written under a temporary name and renamed when complete; only then does
 * latest.json move to it, so a kill at any moment leaves the previous checkpoint intact.
 */

export const LATEST = 'latest.json';

export interface LoadedCheckpoint<S> {
  epoch: number;
  state: S;
  model: tf.LayersModel;
  /** Optimizer weights in getWeights() order; the caller disposes them. */
  optimizerWeights: { name: string; tensor: tf.Tensor }[];
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
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const name = epochDirName(epoch);
  const tmp = path.join(dir, `${name}.tmp-${process.pid}-${Date.now()}`);
  fs.mkdirSync(tmp);
  await saveModel(model, path.join(tmp, 'model'));
  const named = await optimizer.getWeights();
  const { data, specs } = await tf.io.encodeWeights(named);
  // getWeights() makes a fresh scalar for the iteration count; the slots are the live variables.
  named.filter((w) => w.name === 'iter').forEach((w) => w.tensor.dispose());
  const bin = new Uint8Array(data);
  writeFileAtomic(path.join(tmp, 'optimizer.bin'), bin);
  const sha256 = crypto.createHash('sha256').update(bin).digest('hex');
  writeFileAtomic(path.join(tmp, 'optimizer.json'), JSON.stringify({ className: optimizer.getClassName(), specs, bytes: bin.byteLength, sha256 }));
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
  const optJsonPath = path.join(epochDir, 'optimizer.json');
  let optJson: { specs: tf.io.WeightsManifestEntry[]; bytes: number; sha256: string };
  try {
    optJson = JSON.parse(fs.readFileSync(optJsonPath, 'utf8'));
  } catch (e) {
    model.dispose();
    throw new Error(`checkpoint: cannot read ${optJsonPath} (${(e as Error).message})`);
  }
  const bin = fs.readFileSync(path.join(epochDir, 'optimizer.bin'));
  if (bin.byteLength !== optJson.bytes || crypto.createHash('sha256').update(bin).digest('hex') !== optJson.sha256) {
    model.dispose();
    throw new Error(`checkpoint: ${path.join(epochDir, 'optimizer.bin')} does not match ${optJsonPath} (corrupt checkpoint)`);
  }
  const buf = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer;
  const map = tf.io.decodeWeights(buf, optJson.specs);
  const optimizerWeights = optJson.specs.map((s) => ({ name: s.name, tensor: map[s.name] }));
  return { epoch: latest.epoch, state, model, optimizerWeights };
}
