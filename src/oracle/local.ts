import * as crypto from 'crypto';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '../io';
import { foldBatchNorm } from '../models/fold';
import { predictProbabilities } from '../preprocess';
import type { ImageSet } from '../types';
import { normalizeAnswerSpec, shapeAnswers, type AnswerTransform } from './answers';
import { QueryMeter } from './budget';
import { digestOf, modelIdentity } from './identity';
import type { AnswerMode, AnswerSpec, Oracle, OracleAnswer, OracleInfo, OracleStats, QueryOptions } from './types';

export interface LocalOracleOptions {
  /** Answer mode; default 'label' (the paper's setting). Also "topk:5", "rounded:2". */
  answer?: AnswerSpec | AnswerMode | string;
  /** Defences applied to the probabilities before shaping (see answers.ts). */
  transforms?: AnswerTransform[];
  /** Images allowed in total; beyond it query() throws QueryBudgetExceeded. */
  budget?: number;
  /** US$ per 1000 images; default 1 (Azure's paid tier). */
  pricePer1000?: number;
  /** Inference batch size; default 256. */
  batchSize?: number;
  name?: string;
  classNames?: string[];
  /**
   * Answer from a copy with batch norm folded into the convolutions (src/models/fold.ts): same answers
   * up to float rounding, fewer ops per image. Default true; the given model is never modified. The
   * copy is made at the first query, so weights changed after that are not seen: make a new oracle.
   */
  fold?: boolean;
}

/**
 * A trained model behind the Oracle interface: the attacker gets answers, never weights or logits
 * beyond what the answer mode reveals. The HTTP server wraps one of these.
 */
export class LocalOracle implements Oracle {
  readonly info: OracleInfo;
  private readonly meter: QueryMeter;
  private readonly transforms: AnswerTransform[];
  private readonly batchSize: number;
  private readonly fold: boolean;
  private inference?: Promise<tf.LayersModel>;
  private folded?: tf.LayersModel;
  /** Set by fromDir: the oracle loaded the model, so dispose() frees it too. */
  private ownsModel = false;

  constructor(readonly model: tf.LayersModel, opts: LocalOracleOptions = {}) {
    const inShape = model.inputs[0]?.shape;
    const outShape = model.outputs[0]?.shape;
    if (!inShape || inShape.length !== 4 || inShape[3] !== 3 || !inShape[1] || !inShape[2]) {
      throw new Error(`LocalOracle: model input shape ${JSON.stringify(inShape)} is not [batch, height, width, 3]`);
    }
    if (!outShape || outShape.length !== 2 || !outShape[1]) {
      throw new Error(`LocalOracle: model output shape ${JSON.stringify(outShape)} is not [batch, numClasses]`);
    }
    const numClasses = outShape[1];
    if (opts.classNames && opts.classNames.length !== numClasses) {
      throw new Error(`LocalOracle: classNames has ${opts.classNames.length} names but the model has ${numClasses} outputs`);
    }
    this.batchSize = opts.batchSize ?? 256;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) throw new Error(`LocalOracle: batchSize must be an integer >= 1, got ${opts.batchSize}`);
    this.fold = opts.fold ?? true;
    this.meter = new QueryMeter({ budget: opts.budget, pricePer1000: opts.pricePer1000 });
    this.transforms = opts.transforms ?? [];
    const answer = normalizeAnswerSpec(opts.answer);
    const input = { height: inShape[1], width: inShape[2] };
    const transforms = this.transforms.map((t) => t.name);
    this.info = {
      name: opts.name ?? model.name,
      // Computed now: the weights answering later are these (the folded copy is made from them at the
      // first query), and a path or a name never enters it.
      identity: modelIdentity(weightsDigest(model), { answer, numClasses, transforms, input }),
      kind: 'local',
      answer,
      numClasses,
      classNames: opts.classNames,
      input,
      pricePer1000: this.meter.pricePer1000,
      budget: opts.budget,
      transforms,
    };
  }

  /** Loads a model saved with saveModel (src/io.ts) and serves it. */
  static async fromDir(dir: string, opts: LocalOracleOptions = {}): Promise<LocalOracle> {
    const oracle = new LocalOracle(await loadModel(dir), { name: dir, ...opts });
    oracle.ownsModel = true;
    return oracle;
  }

  /** Answers the batch; `opts.onAnswers` gets them all at once (nothing is paid outside this process). */
  async query(batch: ImageSet, opts: QueryOptions = {}): Promise<OracleAnswer[]> {
    const { height, width } = this.info.input;
    if (batch.height !== height || batch.width !== width) {
      throw new Error(`LocalOracle.query: images are ${batch.height}x${batch.width}, the model takes ${height}x${width} (resize them first, as the HTTP server does)`);
    }
    if (batch.images.length !== batch.n * height * width * 3) {
      throw new Error(`LocalOracle.query: images has ${batch.images.length} bytes, expected n*h*w*3 = ${batch.n * height * width * 3}`);
    }
    if (batch.n === 0) return [];
    this.meter.reserve(batch.n);
    let answers: OracleAnswer[] = [];
    try {
      const probs = await predictProbabilities(await this.inferenceModel(), batch, this.batchSize);
      opts.onProbabilities?.(probs);
      answers = shapeAnswers(probs, this.info.numClasses, this.info.answer, this.transforms);
    } finally {
      this.meter.settle(batch.n, answers.length);
    }
    opts.onAnswers?.(0, answers);
    return answers;
  }

  stats(): OracleStats {
    return this.meter.stats();
  }

  /** Frees the folded copy and, for fromDir, the loaded model; a model passed in stays the caller's. */
  dispose(): void {
    if (this.ownsModel) this.model.dispose();
    this.folded?.dispose();
    this.folded = undefined;
    this.inference = undefined;
  }

  private inferenceModel(): Promise<tf.LayersModel> {
    this.inference ??= (async () => {
      if (!this.fold) return this.model;
      this.folded = (await foldBatchNorm(this.model)) ?? undefined;
      return this.folded ?? this.model;
    })();
    return this.inference;
  }
}

/**
 * Digest of a model's architecture (layer classes, input and output shapes) and weights (shape, dtype
 * and bytes of each, in order). Names are left out: tf.js renames layers and weights per process.
 */
export function weightsDigest(model: tf.LayersModel): string {
  const h = crypto.createHash('sha256');
  h.update(JSON.stringify({ layers: model.layers.map((l) => l.getClassName()), input: model.inputs.map((t) => t.shape), output: model.outputs.map((t) => t.shape) }));
  // getWeights() returns the variables themselves, so no tensor is created (or left behind) here.
  for (const w of model.getWeights()) {
    const data = w.dataSync();
    h.update(`${w.dtype}${JSON.stringify(w.shape)}`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return digestOf({ sha256: h.digest('hex') });
}
