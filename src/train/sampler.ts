/**
 * The order in which one epoch visits the training images. Stolen labels are imbalanced (the oracle
 * answers some classes far more often for natural images), so the class-balanced order draws every
 * class equally often: each epoch has the usual n draws, split evenly over the classes that occur;
 * a class walks through its own shuffled images, repeating them when it has fewer than its share
 * (oversampling) and leaving some out when it has more (subsampling; the next epoch continues with
 * a fresh shuffle). The loss stays unweighted, so its value remains comparable across runs.
 */

/** Fisher-Yates shuffle in place with the given RNG. */
export function shuffleInPlace(a: Int32Array, rng: () => number): Int32Array {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

export function shuffledIndices(n: number, rng: () => number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return shuffleInPlace(a, rng);
}

export function classCounts(classes: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < classes.length; i++) counts[classes[i]]++;
  return counts;
}

/** n draws with classes equally represented (see the file comment), shuffled. */
export function classBalancedIndices(classes: ArrayLike<number>, numClasses: number, rng: () => number): Int32Array {
  const n = classes.length;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < n; i++) byClass[classes[i]].push(i);
  const present = byClass.map((m, c) => (m.length ? c : -1)).filter((c) => c >= 0);
  if (present.length === 0) return new Int32Array(0);
  const share = Math.floor(n / present.length);
  const quota = new Map<number, number>(present.map((c) => [c, share]));
  // The remainder goes to distinct random classes so the total stays exactly n.
  const extra = shuffledIndices(present.length, rng);
  for (let r = 0; r < n - share * present.length; r++) {
    const c = present[extra[r]];
    quota.set(c, (quota.get(c) as number) + 1);
  }
  const out = new Int32Array(n);
  let k = 0;
  for (const c of present) {
    const members = Int32Array.from(byClass[c]);
    let perm = shuffleInPlace(members.slice(), rng);
    let p = 0;
    for (let q = quota.get(c) as number; q > 0; q--) {
      if (p === perm.length) {
        perm = shuffleInPlace(members.slice(), rng);
        p = 0;
      }
      out[k++] = perm[p++];
    }
  }
  return shuffleInPlace(out, rng);
}
