import { appendFile } from "node:fs/promises";
import type { AuditCheckpoint } from "@skiff/protocol";
import { AuditHeadError, type Store } from "@skiff/store";
import type { FastifyBaseLogger } from "fastify";

/** Checkpoints this replica keeps in memory for `GET /v1/audit/checkpoints`. */
const KEPT = 1_000;

/**
 * Every `intervalMs`, when the audit chain has moved, a checkpoint of its head signed with the
 * audit key goes outside the database: to this process's log, to `file` (JSON lines) when one is
 * set, and to the in-memory list the API serves. A later `skiff audit verify --checkpoint FILE`
 * names rows deleted from the end and history rewritten since.
 */
export class AuditCheckpoints {
  private readonly kept: AuditCheckpoint[] = [];
  private timer: NodeJS.Timeout | null = null;
  private lastSeq = -1;
  private refusedSeq = -1;
  private running: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs: number,
    private readonly file: string | null,
  ) {}

  get sealed(): boolean {
    return this.store.auditKey !== null;
  }

  /** Newest first. */
  list(): AuditCheckpoint[] {
    return [...this.kept].reverse();
  }

  start(): void {
    if (!this.sealed || this.timer) return;
    this.timer = setInterval(() => void this.take(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    // One last checkpoint on the way out, so the head at shutdown is on record too.
    await this.take();
  }

  /** Takes a checkpoint now if the head moved since the last one. */
  take(): Promise<void> {
    this.running ??= this.write().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async write(): Promise<void> {
    try {
      const cp = await this.store.auditCheckpoint();
      if (!cp || cp.seq === this.lastSeq) return;
      this.lastSeq = cp.seq;
      this.kept.push(cp);
      if (this.kept.length > KEPT) this.kept.splice(0, this.kept.length - KEPT);
      this.log.info({ auditCheckpoint: cp }, "audit checkpoint");
      if (this.file) await appendFile(this.file, `${JSON.stringify(cp)}\n`, { mode: 0o600 });
    } catch (err) {
      if (err instanceof AuditHeadError) {
        // Said once per row, loudly: someone wrote into the audit table behind the API's back.
        if (err.seq !== this.refusedSeq) this.log.error({ seq: err.seq }, err.message);
        this.refusedSeq = err.seq;
        return;
      }
      this.log.warn({ err }, "audit checkpoint failed; the next interval tries again");
    }
  }
}
