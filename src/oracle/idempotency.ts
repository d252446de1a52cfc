/**
 * Charge once per Idempotency-Key (docs/oracle-api.md, "Never pay twice"): the first request with a key
 * does the work; requests with the same key that arrive while it runs wait for it, and later ones get
 * its stored result; all of them are answered the same and only the first is charged. A key sent again
 * with a different request (another fingerprint) is a conflict, never the old answers. A failed first
 * request stores nothing, so the next one with the key does the work itself.
 */

/** The same key came with a different request. */
export class IdempotencyConflict extends Error {
  constructor(readonly key: string) {
    super(`Idempotency-Key '${key}' was used before with different images; keys are single-use per request`);
    this.name = 'IdempotencyConflict';
  }
}

interface Entry<T> {
  fingerprint: string;
  /** Set while the first request runs. */
  running?: Promise<T>;
  /** Set once it succeeded. */
  done?: { value: T };
}

export class IdempotencyStore<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private finished = 0;

  /** `capacity`: finished keys remembered (oldest forgotten first); keys in flight are always kept. */
  constructor(readonly capacity = 1024) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new Error(`idempotency store capacity must be an integer >= 1, got ${capacity}`);
  }

  /** Keys remembered (finished or in flight). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * `work()` once for `key`; `replayed` is true when another request with the key did it. Throws
   * IdempotencyConflict when the key is known with another fingerprint.
   */
  async run(key: string, fingerprint: string, work: () => Promise<T>): Promise<{ value: T; replayed: boolean }> {
    for (;;) {
      const e = this.entries.get(key);
      if (!e) break;
      if (e.fingerprint !== fingerprint) throw new IdempotencyConflict(key);
      if (e.done) return { value: e.done.value, replayed: true };
      // In flight: wait for it, whatever its outcome, then look again (it may have failed and left no answer).
      await e.running!.catch(() => undefined);
    }
    // No await between the lookup above and this registration: a second request cannot slip in.
    const entry: Entry<T> = { fingerprint };
    entry.running = work();
    this.entries.set(key, entry);
    try {
      const value = await entry.running;
      entry.done = { value };
      this.finished += 1;
      this.evict();
      return { value, replayed: false };
    } catch (err) {
      this.entries.delete(key);
      throw err;
    } finally {
      entry.running = undefined;
    }
  }

  private evict(): void {
    if (this.finished <= this.capacity) return;
    for (const [k, e] of this.entries) {
      if (!e.done) continue;
      this.entries.delete(k);
      if (--this.finished <= this.capacity) return;
    }
  }
}
