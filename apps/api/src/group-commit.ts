interface Waiting<I, R> {
  input: I;
  waiters: { resolve(r: R): void; reject(e: unknown): void }[];
}

/**
 * Group commit: while one batch is being written, the calls that arrive wait and go together in the
 * next transaction. An idle replica writes a lone call at once; a busy one writes hundreds per
 * commit, so the cost of a commit (a WAL flush for durable writes) is shared. Every caller gets its
 * answer only after its own write is stored.
 *
 * With `keyOf`, two calls with one key in the same batch are merged: the newer input is written and
 * both callers get its result (a heartbeat superseding an older one of the same agent).
 */
export class GroupCommit<I, R> {
  private pending = new Map<unknown, Waiting<I, R>>();
  private flushing = false;
  private scheduled = false;
  private next = 0;

  constructor(
    private readonly write: (inputs: I[]) => Promise<R[]>,
    private readonly options: { maxBatch?: number; keyOf?: (input: I) => unknown } = {},
  ) {}

  submit(input: I): Promise<R> {
    return new Promise((resolve, reject) => {
      const key = this.options.keyOf ? this.options.keyOf(input) : this.next++;
      const entry = this.pending.get(key);
      if (entry) {
        entry.input = input;
        entry.waiters.push({ resolve, reject });
      } else {
        this.pending.set(key, { input, waiters: [{ resolve, reject }] });
      }
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.flushing || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.pending.size === 0) return;
    this.flushing = true;
    const max = this.options.maxBatch ?? 500;
    const batch: Waiting<I, R>[] = [];
    for (const [key, w] of this.pending) {
      if (batch.length >= max) break;
      batch.push(w);
      this.pending.delete(key);
    }
    try {
      const results = await this.write(batch.map((w) => w.input));
      batch.forEach((w, i) => {
        const result = results[i];
        for (const waiter of w.waiters) {
          if (result === undefined) waiter.reject(new Error("group commit: no result for an input"));
          else waiter.resolve(result);
        }
      });
    } catch (err) {
      for (const w of batch) for (const waiter of w.waiters) waiter.reject(err);
    } finally {
      this.flushing = false;
      if (this.pending.size > 0) this.schedule();
    }
  }
}
