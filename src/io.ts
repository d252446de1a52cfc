import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';

/**
 * Model save/load in the standard TF.js layers format (model.json + weights.bin) on every backend.
 * tfjs-node's file:// handler only exists with the native addon, so this goes through
 * tf.io.withSaveHandler / tf.io.fromMemory and plain fs instead.
 */

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** Extra top-level field in model.json; TF.js loaders ignore unknown fields. */
interface WeightsIntegrity {
  bytes: number;
  sha256: string;
}

/** Writes `data` to `file` via a temporary sibling and a rename, so readers never see half a file. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data as Uint8Array);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Hex SHA-256 of bytes or a string. */
export function sha256(data: crypto.BinaryLike): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/**
 * Saves `model` into `dir` as model.json + weights.bin. Each file is written atomically, weights
 * first; model.json records the weights' size and SHA-256, so a crash between the two renames (new
 * weights, old model.json) is detected by loadModel instead of silently loading a mix.
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const modelJson: tf.io.ModelJSON & { weightsIntegrity: WeightsIntegrity } = {
        modelTopology: artifacts.modelTopology as object,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
        weightsIntegrity: { bytes: weights.byteLength, sha256: sha256(weights) },
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      writeFileAtomic(path.join(dir, WEIGHTS_BIN), weights);
      writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

function expectedBytes(spec: tf.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
  const per = DTYPE_BYTES[dtype];
  if (per === undefined) throw new Error(`unsupported weight dtype '${dtype}' for '${spec.name}'`);
  return count * per;
}

/**
 * Loads a model saved by saveModel (or any TF.js layers model directory with local weight files).
 * Errors name the directory/file and what was expected.
 */
/**
 * Fails fast, before any data is loaded, when one of `dirs` holds no saved model; `role` names what the
 * directory was given as (e.g. 'teacher', 'ensemble member').
 */
export function assertSavedModelDirs(dirs: string[], role: string): void {
  if (dirs.length === 0) throw new Error(`no ${role} model directories given`);
  for (const d of dirs) {
    if (!fs.existsSync(path.join(d, MODEL_JSON))) throw new Error(`${role} '${d}': no ${MODEL_JSON} there (expected a saved model directory, e.g. data/runs/full-1/copycats/NPD-SL/model)`);
  }
}

export async function loadModel(dir: string): Promise<tf.LayersModel> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`loadModel: model directory ${dir} does not exist (expected a folder with ${MODEL_JSON} and ${WEIGHTS_BIN})`);
  }
  const jsonPath = path.join(dir, MODEL_JSON);
  if (!fs.existsSync(jsonPath)) throw new Error(`loadModel: ${jsonPath} is missing (expected a TF.js layers model.json)`);
  let json: tf.io.ModelJSON & { weightsIntegrity?: WeightsIntegrity };
  try {
    json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  } catch (e) {
    throw new Error(`loadModel: ${jsonPath} is not valid JSON (${(e as Error).message}); the file is corrupt or truncated`);
  }
  if (!json || typeof json !== 'object' || !json.modelTopology) {
    throw new Error(`loadModel: ${jsonPath} has no 'modelTopology' field; expected a TF.js layers model.json`);
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new Error(`loadModel: ${jsonPath} has no 'weightsManifest' array; expected a TF.js layers model.json`);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  for (const group of json.weightsManifest) {
    for (const p of group.paths) {
      const file = path.join(dir, p);
      if (!fs.existsSync(file)) throw new Error(`loadModel: weights file ${file} listed in ${jsonPath} is missing`);
      chunks.push(fs.readFileSync(file));
    }
    specs.push(...group.weights);
  }
  const total = chunks.reduce((s, c) => s + c.byteLength, 0);
  const weights = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    weights.set(c, off);
    off += c.byteLength;
  }
  const need = specs.reduce((s, w) => s + expectedBytes(w), 0);
  if (total !== need) {
    throw new Error(`loadModel: weights in ${dir} have ${total} bytes but ${MODEL_JSON} describes ${need}; the weights file is truncated or belongs to another model`);
  }
  if (json.weightsIntegrity && json.weightsIntegrity.sha256 !== sha256(weights)) {
    throw new Error(`loadModel: ${path.join(dir, WEIGHTS_BIN)} does not match the SHA-256 recorded in ${MODEL_JSON} (interrupted save or corrupt file)`);
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    trainingConfig: json.trainingConfig,
    userDefinedMetadata: json.userDefinedMetadata,
    weightSpecs: specs,
    weightData: weights.buffer,
  };
  try {
    return await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (e) {
    throw new Error(`loadModel: TF.js could not build the model from ${jsonPath}: ${(e as Error).message}`);
  }
}
