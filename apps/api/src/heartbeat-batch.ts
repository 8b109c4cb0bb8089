import type { Store } from "@skiff/store";

type Input = Parameters<Store["heartbeats"]>[0][number];
type Result = Awaited<ReturnType<Store["heartbeats"]>>[number];

interface Waiting {
  input: Input;
  waiters: { resolve(r: Result): void; reject(e: unknown): void }[];
}

/**
 * Group commit for heartbeats: while one batch is being written, the heartbeats that arrive wait and
 * go together in the next transaction (one statement for all of them). An idle replica writes a lone
 * heartbeat at once; a busy one writes hundreds per commit. Every caller still gets its answer only
 * after its heartbeat is stored, so the commands in it reflect the state after the write.
 */
export class HeartbeatBatch {
  private pending = new Map<string, Waiting>();
  private flushing = false;
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly maxBatch = 500,
  ) {}

  submit(input: Input): Promise<Result> {
    return new Promise((resolve, reject) => {
      const entry = this.pending.get(input.agentId);
      // Two heartbeats of one agent in one batch: the newer one is what gets stored.
      if (entry) {
        entry.input = input;
        entry.waiters.push({ resolve, reject });
      } else {
        this.pending.set(input.agentId, { input, waiters: [{ resolve, reject }] });
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
    const batch = [...this.pending.values()].slice(0, this.maxBatch);
    for (const w of batch) this.pending.delete(w.input.agentId);
    try {
      const results = await this.store.heartbeats(batch.map((w) => w.input));
      batch.forEach((w, i) => {
        for (const waiter of w.waiters) waiter.resolve(results[i] ?? null);
      });
    } catch (err) {
      for (const w of batch) for (const waiter of w.waiters) waiter.reject(err);
    } finally {
      this.flushing = false;
      if (this.pending.size > 0) this.schedule();
    }
  }
}
