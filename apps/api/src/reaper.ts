import type { ApiContext } from "./context.ts";
import { logKey } from "./waiters.ts";

/**
 * Marks silent agents offline and takes their jobs back, times out overdue jobs and deletes expired
 * logs. Every pass is one idempotent transaction, so each API replica can run one.
 */
export class Reaper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(private readonly ctx: ApiContext) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err) => {
          this.ctx.metrics.reaperRuns.inc({ result: "error" });
          this.ctx.log.warn({ err }, "reaper pass failed; retrying next interval");
        })
        .finally(() => {
          this.running = null;
          this.schedule();
        });
    }, this.ctx.config.reaperIntervalMs);
  }

  async runOnce(): Promise<void> {
    const { store, config } = this.ctx;
    const { value } = await store.reap({
      offlineAfterMs: config.offlineAfterMs,
      timeoutGraceSeconds: config.timeoutGraceSeconds,
      logRetentionSeconds: config.logRetentionSeconds,
      agentRetentionSeconds: config.agentRetentionSeconds,
    });
    this.ctx.metrics.reaperRuns.inc({ result: "ok" });
    // Their own credentials died in that transaction; no replica may keep honouring a cached one.
    if (value.offline.length > 0) await this.ctx.principals.agentsGone(value.offline);
    const { requeued, failed, canceled } = value.requeue;
    if (
      value.offline.length + requeued.length + failed.length + canceled.length + value.timedOut.length >
      0
    ) {
      this.ctx.log.info(
        {
          offline: value.offline.length,
          requeued: requeued.length,
          failed: failed.length,
          timedOut: value.timedOut.length,
        },
        "reaper took back work",
      );
    }
    for (const queue of new Set(requeued.map((j) => j.queue))) await this.ctx.bus.wake(queue).catch(() => {});
    // Each of these jobs' logs got a line (how the attempt ended): its followers read it now.
    for (const job of [...requeued, ...failed, ...canceled, ...value.timedOut])
      await this.ctx.bus.wake(logKey(job.id)).catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }
}
