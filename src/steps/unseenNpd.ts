import type * as tf from '@tensorflow/tfjs';
import { agreement } from '../metrics';
import { argmaxRows, predictProbabilities } from '../preprocess';
import type { Run } from '../run';
import { ImageSet } from '../types';
import { loadOracleModel } from './oracleStep';

/**
 * How faithful a copy is off the test set: its agreement with the oracle on NPD images that neither
 * it nor the stolen set ever held (the pool's held-out slice). A copy can follow the oracle closely on
 * CIFAR-10 and much less on natural images in general, which is where an attacker's copy is used.
 * The oracle's answers here are the experimenter's measurement, asked of the local model: no query is
 * paid and none enters a stolen set.
 */
export interface UnseenNpdAgreement {
  images: number;
  /** Share of the held-out images where the copy gives the oracle's label. */
  agreement: number;
  /** The same where the oracle is unsure (top probability < 0.3), and how many such images. */
  unsureAgreement: number | null;
  unsureImages: number;
}

/** The oracle's view of the held-out images: labels and whether it was unsure. */
export interface HeldOutNpd {
  images: ImageSet;
  oracleLabels: Uint8Array;
  oracleUnsure: Uint8Array;
}

const UNSURE = 0.3;

/** Asks the run's oracle model (locally) about the held-out images. */
export async function heldOutNpdForRun(run: Run, heldOut: ImageSet): Promise<HeldOutNpd> {
  const oracle = await loadOracleModel(run);
  try {
    const probs = await predictProbabilities(oracle, heldOut);
    const k = probs.length / Math.max(1, heldOut.n);
    const oracleLabels = argmaxRows(probs, k);
    const oracleUnsure = Uint8Array.from({ length: heldOut.n }, (_, i) => (probs[i * k + oracleLabels[i]] < UNSURE ? 1 : 0));
    return { images: heldOut, oracleLabels, oracleUnsure };
  } finally {
    oracle.dispose();
  }
}

/** Scores `model` against the oracle's labels of the held-out images. */
export async function unseenNpdAgreement(model: tf.LayersModel, h: HeldOutNpd): Promise<UnseenNpdAgreement> {
  const probs = await predictProbabilities(model, h.images);
  const labels = argmaxRows(probs, probs.length / Math.max(1, h.images.n));
  const unsure = [...h.oracleUnsure.keys()].filter((i) => h.oracleUnsure[i]);
  return {
    images: h.images.n,
    agreement: agreement(labels, h.oracleLabels),
    unsureAgreement: unsure.length ? agreement(unsure.map((i) => labels[i]), unsure.map((i) => h.oracleLabels[i])) : null,
    unsureImages: unsure.length,
  };
}
