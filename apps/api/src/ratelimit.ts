/**
 * Counts failed requests per key (a token id or a source address) in a sliding one-minute window,
 * so a script with a bad token or a scanner gets 429 instead of hammering the database and the
 * audit log. Memory is bounded: the oldest keys go first.
 */
export class FailureLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limitPerMinute: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Seconds until the key may try again, or 0 when it is not limited. */
  retryAfter(key: string, now = Date.now()): number {
    const list = this.prune(key, now);
    if (list.length < this.limitPerMinute) return 0;
    const oldest = list[0] ?? now;
    return Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000));
  }

  fail(key: string, now = Date.now()): void {
    const list = this.prune(key, now);
    list.push(now);
    this.hits.delete(key);
    this.hits.set(key, list);
    if (this.hits.size > this.maxKeys) {
      const first = this.hits.keys().next();
      // Stryker disable next-line ConditionalExpression: the map holds maxKeys + 1 entries here, so there is a first
      if (!first.done) this.hits.delete(first.value);
    }
  }

  private prune(key: string, now: number): number[] {
    const list = this.hits.get(key) ?? [];
    while (list.length > 0 && (list[0] ?? 0) <= now - 60_000) list.shift();
    return list;
  }
}
