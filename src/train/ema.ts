import * as tf from '@tensorflow/tfjs';
import type { NamedTensor } from './checkpoint';

/**
 * Exponential moving average of a model's weights (Polyak averaging; "mean teacher", timm's ModelEma),
 * batch-norm moving statistics included. Copycats learn from hard labels that are noisy on the augmented
 * views of out-of-domain images (bench:consistency: the oracle relabels about a third of them), so the
 * raw weights jump from epoch to epoch; their running average is a cheap ensemble of the recent
 * iterates, with no extra query and no extra forward pass.
 *
 * The decay warms up as min(decay, (1 + step) / (10 + step)), so early averages are not dominated by
 * the random initial weights. Updates are a pure function of the weights and the step, so a run
 * resumed from a checkpoint (which stores the average) continues exactly.
 */
export class WeightAverage {
  private readonly shadow: tf.Variable[];

  constructor(private readonly model: tf.LayersModel, readonly decay: number) {
    if (!(decay > 0 && decay < 1)) throw new Error(`WeightAverage: decay must be in (0, 1), got ${decay}`);
    // Unnamed: tfjs names them uniquely, so two averages of one model can coexist.
    this.shadow = model.weights.map((w) => tf.variable(w.read(), false));
  }

  /** Decay used at 0-based optimizer step `step`. */
  decayAt(step: number): number {
    return Math.min(this.decay, (1 + step) / (10 + step));
  }

  /** Folds the model's current weights in; call after each optimizer step. */
  update(step: number): void {
    const d = this.decayAt(step);
    const weights = this.model.weights;
    tf.tidy(() => {
      const dT = tf.scalar(d);
      const rest = tf.scalar(1 - d);
      for (let i = 0; i < weights.length; i++) {
        this.shadow[i].assign(tf.add(tf.mul(this.shadow[i], dT), tf.mul(weights[i].read(), rest)));
      }
    });
  }

  /** Copies the average into the model (the raw weights are lost unless the caller kept them). */
  applyTo(model: tf.LayersModel = this.model): void {
    model.setWeights(this.shadow);
  }

  /**
   * Runs `fn` with the average in the model and puts the raw weights back afterwards, also when
   * `fn` throws.
   */
  async withAverage<T>(fn: () => Promise<T>): Promise<T> {
    const raw = this.model.weights.map((w) => tf.clone(w.read()));
    try {
      this.applyTo();
      return await fn();
    } finally {
      this.model.setWeights(raw);
      raw.forEach((t) => t.dispose());
    }
  }

  /** The average as named tensors for a checkpoint (live variables: do not dispose them). */
  named(): NamedTensor[] {
    return this.shadow.map((v, i) => ({ name: `ema/${i}`, tensor: v }));
  }

  /** Restores an average saved by `named()`, checking it belongs to this model. */
  load(saved: NamedTensor[], where: string): void {
    if (saved.length !== this.shadow.length || saved.some((s, i) => s.tensor.shape.join() !== this.shadow[i].shape.join())) {
      throw new Error(`${where}: the saved weight average has ${saved.length} tensors that do not match this model's ${this.shadow.length} weights`);
    }
    saved.forEach((s, i) => this.shadow[i].assign(s.tensor));
  }

  dispose(): void {
    this.shadow.forEach((v) => v.dispose());
  }
}
