import { type JobEvent, repairText } from "@skiff/protocol";
import { type AgentClient, ApiError, ApiUnreachable } from "./client.ts";

export interface ReporterOptions {
  batchMs: number;
  batchBytes: number;
  /** Bytes of output the worker keeps for one job; past it one truncation marker, then nothing. */
  capBytes: number;
  /** Unsent bytes held while the API is away; past it lines are dropped and counted. */
  maxPendingBytes: number;
  /** Secret values replaced by `***` before anything leaves the worker. */
  secrets: string[];
  onCancel(): void;
  /** The lease is gone (409): the job must be killed at once and nothing more reported. */
  onLeaseLost(why: string): void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** The seq after which this attempt numbers its lines (see `attemptSeqBase`). */
  seqBase?: number;
}

/**
 * Where an attempt's log seqs start. The API keeps a job's lines by (job, seq) and ignores a seq it
 * already has, so an attempt that numbered from 1 again after a requeue (its worker was lost) would
 * have its first lines silently dropped in favour of the dead attempt's. A billion lines per attempt
 * is far past the log cap, and 100 attempts (the JobSpec maximum) stay well within a safe integer.
 */
export function attemptSeqBase(attempt: number): number {
  return Math.max(0, attempt - 1) * 1_000_000_000;
}

const MAX_BACKOFF_MS = 5_000;
/** Events per upload; fewer while a refused batch is being narrowed down to the event it refuses. */
const MAX_BATCH_EVENTS = 2000;

function sizeOf(event: JobEvent): number {
  return event.type === "log" ? Buffer.byteLength(event.text) + 32 : 64;
}

/**
 * Whether the API refused the upload for good: sending the same body again gets the same answer.
 * Not the lease refusals (handled apart), not 429 (come back later), not 5xx (`ApiUnreachable`).
 */
function refusedForGood(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429;
}

/** A refusal that depends on what was sent (bad input, too large), so a smaller batch may pass. */
function refusedForContent(err: ApiError): boolean {
  return err.status === 400 || err.status === 413;
}

/**
 * Streams one job's step events and output lines to the API in order: numbered lines, batched
 * every `batchMs` or `batchBytes`, retried until acknowledged (the API ignores a seq it already
 * has, so a retry never duplicates a line), bounded while the API is unreachable. A batch the API
 * refuses for good (a 4xx other than the lease refusals and 429) is never retried as it was: it is
 * halved down to the one event refused, which is replaced by a marker line saying so, so no upload
 * holds the job, and its slot, forever.
 */
export class JobReporter {
  private seq = 0;
  private pending: JobEvent[] = [];
  private pendingBytes = 0;
  private sentBytes = 0;
  private truncated = false;
  private dropped = 0;
  private timer: NodeJS.Timeout | null = null;
  private inflight: Promise<void> | null = null;
  private lost = false;
  /** Seqs whose line was replaced by a refusal marker: a marker refused in turn is not replaced again. */
  private readonly markers = new Set<number>();
  private readonly masks: string[];

  constructor(
    private readonly client: AgentClient,
    private readonly agentId: string,
    private readonly jobId: string,
    private readonly epoch: number,
    private readonly opts: ReporterOptions,
  ) {
    this.seq = opts.seqBase ?? 0;
    this.masks = opts.secrets.filter((s) => s.length >= 3).sort((a, b) => b.length - a.length);
  }

  get leaseLost(): boolean {
    return this.lost;
  }

  private mask(text: string): string {
    let out = text;
    for (const secret of this.masks) if (out.includes(secret)) out = out.split(secret).join("***");
    return out;
  }

  line(step: number | null, stream: "stdout" | "stderr" | "system", raw: string): void {
    if (this.lost || this.truncated) return;
    const text = repairText(this.mask(raw));
    const size = Buffer.byteLength(text) + 32;
    if (this.sentBytes + this.pendingBytes + size > this.opts.capBytes) {
      this.truncated = true;
      this.push(
        {
          type: "log",
          seq: ++this.seq,
          step,
          stream: "system",
          ts: new Date().toISOString(),
          text: "[log truncated]",
        },
        64,
      );
      return;
    }
    if (this.pendingBytes + size > this.opts.maxPendingBytes) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      const note = `[${this.dropped} lines dropped while the API was unreachable]`;
      this.dropped = 0;
      this.push(
        { type: "log", seq: ++this.seq, step, stream: "system", ts: new Date().toISOString(), text: note },
        80,
      );
    }
    this.push({ type: "log", seq: ++this.seq, step, stream, ts: new Date().toISOString(), text }, size);
  }

  /**
   * Sent at once, not with the next batch: the job shows as running (and the step as started) while
   * the sandbox is still coming up, instead of up to one batch window later.
   */
  stepStarted(step: number): void {
    this.push({ type: "step.started", step, ts: new Date().toISOString() }, 64);
    this.kick(0);
  }

  stepFinished(
    step: number,
    outcome: "succeeded" | "failed" | "canceled" | "timed_out",
    exitCode: number | null,
  ): void {
    this.push({ type: "step.finished", step, outcome, exitCode, ts: new Date().toISOString() }, 64);
    this.kick(0);
  }

  private push(event: JobEvent, size: number): void {
    if (this.lost) return;
    this.pending.push(event);
    this.pendingBytes += size;
    this.kick(this.pendingBytes >= this.opts.batchBytes ? 0 : this.opts.batchMs);
  }

  private kick(delay: number): void {
    if (this.inflight) return;
    if (this.timer && delay > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.inflight = this.sendAll().finally(() => {
        this.inflight = null;
        if (this.pending.length > 0 && !this.lost) this.kick(this.opts.batchMs);
      });
    }, delay);
  }

  /** Sends everything pending, in order, retrying while the API is unreachable. */
  private async sendAll(): Promise<void> {
    let backoff = 200;
    let limit = MAX_BATCH_EVENTS;
    while (this.pending.length > 0 && !this.lost) {
      const batch = this.pending.slice(0, limit);
      try {
        const res = await this.client.events(this.jobId, {
          agentId: this.agentId,
          epoch: this.epoch,
          events: batch,
        });
        this.pending = this.pending.slice(batch.length);
        const size = batch.reduce((n, e) => n + sizeOf(e), 0);
        this.pendingBytes = Math.max(0, this.pendingBytes - size);
        this.sentBytes += size;
        backoff = 200;
        limit = MAX_BATCH_EVENTS;
        if (res.cancel) this.opts.onCancel();
      } catch (err) {
        if (
          err instanceof ApiError &&
          (err.code === "lease_lost" || err.code === "already_final" || err.code === "not_found")
        ) {
          this.lost = true;
          this.pending = [];
          this.opts.onLeaseLost(err.message);
          return;
        }
        if (refusedForGood(err)) {
          if (refusedForContent(err) && batch.length > 1) limit = Math.ceil(batch.length / 2);
          else this.dropRefused(batch.length, err);
          continue;
        }
        if (!(err instanceof ApiUnreachable) && !(err instanceof ApiError && err.status === 429)) {
          this.opts.log?.("events upload failed; retrying", {
            jobId: this.jobId,
            error: (err as Error).message,
          });
        }
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  /**
   * Gives up on the first `count` pending events, which the API refused for good. A refused log
   * line is replaced, under its own seq so it stays in place, by a marker saying what happened; a
   * marker refused in turn, or a step event, is dropped with only the worker's log to tell.
   */
  private dropRefused(count: number, err: ApiError): void {
    const dropped = this.pending.slice(0, count);
    this.pending = this.pending.slice(count);
    this.pendingBytes = Math.max(0, this.pendingBytes - dropped.reduce((n, e) => n + sizeOf(e), 0));
    this.opts.log?.("events upload refused; dropping it", {
      jobId: this.jobId,
      events: count,
      status: err.status,
      code: err.code,
      error: err.message,
    });
    const first = dropped[0];
    if (count !== 1 || first?.type !== "log" || this.markers.has(first.seq)) return;
    const what = `${err.status} ${err.code}: ${err.message}`.slice(0, 300);
    // Stepless: the step index may be what the API refused.
    const marker: JobEvent = {
      ...first,
      step: null,
      stream: "system",
      text: repairText(`[line dropped: the API refused it (${what})]`),
    };
    this.markers.add(first.seq);
    this.pending.unshift(marker);
    this.pendingBytes += sizeOf(marker);
  }

  /** Waits until every event so far is acknowledged (or the lease is lost). */
  async drain(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.inflight) await this.inflight;
    if (this.pending.length > 0 && !this.lost) await this.sendAll();
  }
}
