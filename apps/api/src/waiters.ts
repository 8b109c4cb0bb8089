import type { Bus } from "@skiff/bus";

type Wake = () => void;

/**
 * Long-polling claimers waiting for work, by queue. A claimer arms before it looks at the queue, so
 * a job submitted between its empty claim and its wait still wakes it.
 */
export class ClaimWaiters {
  private readonly byQueue = new Map<string, Set<Wake>>();
  private readonly unsubscribe: () => void;

  constructor(bus: Bus) {
    this.unsubscribe = bus.onWake((key) => this.fire(key));
  }

  get size(): number {
    let n = 0;
    for (const set of this.byQueue.values()) n += set.size;
    return n;
  }

  arm(queues: string[]): { wait(ms: number, signal?: AbortSignal): Promise<boolean>; cancel(): void } {
    let woken = false;
    let resolve: ((v: boolean) => void) | null = null;
    const wake: Wake = () => {
      woken = true;
      resolve?.(true);
    };
    for (const q of queues) {
      let set = this.byQueue.get(q);
      if (!set) {
        set = new Set();
        this.byQueue.set(q, set);
      }
      set.add(wake);
    }
    const cancel = () => {
      for (const q of queues) {
        const set = this.byQueue.get(q);
        set?.delete(wake);
        if (set?.size === 0) this.byQueue.delete(q);
      }
    };
    return {
      cancel,
      wait: (ms, signal) =>
        new Promise<boolean>((done) => {
          if (woken) {
            cancel();
            done(true);
            return;
          }
          const finish = (v: boolean) => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            cancel();
            done(v);
          };
          const onAbort = () => finish(false);
          const timer = setTimeout(() => finish(false), Math.max(0, ms));
          signal?.addEventListener("abort", onAbort, { once: true });
          resolve = finish;
        }),
    };
  }

  private fire(queue: string): void {
    const set = this.byQueue.get(queue);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  close(): void {
    this.unsubscribe();
    for (const set of this.byQueue.values()) for (const wake of set) wake();
    this.byQueue.clear();
  }
}

/** The wake key for followers of a job's log (queue names cannot contain a colon). */
export const LOG_KEY_PREFIX = "log:";
export const logKey = (jobId: string) => `${LOG_KEY_PREFIX}${jobId}`;
