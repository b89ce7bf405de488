/**
 * Answers reused for a short while, per key, so a burst of requests from one person asks the
 * provider once. A lookup in flight is shared too. Failures are not kept: the next request asks
 * again. The clock is passed in (monotonic milliseconds) so tests can move time.
 */
export class AnswerCache<V> {
  private readonly entries = new Map<string, { expires: number; value: Promise<V> }>();

  constructor(
    private readonly ttlMs: number,
    private readonly clock: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The cached answer for `key`, or the one `load` gives (kept for the TTL if it succeeds). */
  get(key: string, load: () => Promise<V>, keep: (value: V) => boolean): Promise<V> {
    const now = this.clock();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    if (hit) this.entries.delete(key);
    const value = load();
    if (this.ttlMs <= 0) return value;
    const entry = { expires: Number.POSITIVE_INFINITY, value };
    this.entries.set(key, entry);
    // NB. The TTL runs from the answer, not the question: a slow provider must not hand out an
    // answer that is already old. Until then the entry is the shared in-flight lookup.
    void value.then(
      (v) => {
        if (this.entries.get(key) !== entry) return;
        if (keep(v)) entry.expires = this.clock() + this.ttlMs;
        else this.entries.delete(key);
      },
      () => this.entries.delete(key),
    );
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }
}
