/**
 * JSON with object keys sorted at every depth and undefined members dropped: one text per value, so a
 * digest of it (a step key, an oracle identity, a request key) never depends on the order keys were set.
 * Kept free of imports: the HTTP client and the cache use it without loading a model runtime.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}
