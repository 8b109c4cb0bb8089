import { type JobEvent, repairText } from "@skiff/protocol";
import { type AgentClient, ApiError, ApiUnreachable } from "./client.ts";

export interface ReporterOptions {
  batchMs: number;
  batchBytes: number;
  /**
   * Bytes of a job's output (stdout and stderr) the worker sends. Past three quarters of it the
   * rest of a step's output goes to a tail buffer; at the step's end (or before Skiff's next
   * line) one marker says how much was left out, then the last lines follow, within the cap.
   */
  capBytes: number;
  /**
   * Unsent bytes held while the API is slow or away. Past it the reporter is `full`: the driver
   * stops reading the step's output (the step blocks in write) until half of it is sent. Lines are
   * only dropped, and counted, past twice this (the step is being ended and is read regardless).
   */
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

const MAX_BACKOFF_MS = 5_000;
/** Bytes of the cap kept for a truncation marker (its text is well under this). */
const MARKER_ROOM = 256;
/** Events per upload; fewer while a refused batch is being narrowed down to the event it refuses. */
const MAX_BATCH_EVENTS = 2000;

function sizeOf(event: JobEvent): number {
  return event.type === "log" ? Buffer.byteLength(event.text) + 32 : 64;
}

/** An output line held in a step's tail until the step ends. */
interface Held {
  stream: "stdout" | "stderr";
  text: string;
  bytes: number;
  ts: string;
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
  /** Bytes of log text queued so far (Skiff's own lines included): what counts against the cap. */
  private outputBytes = 0;
  /** The step whose output overflows into `tail`, or null while under the head budget. */
  private tail: {
    step: number | null;
    /** Held lines from `start` on (those before it were left out). */
    lines: Held[];
    start: number;
    bytes: number;
    omittedLines: number;
    omittedBytes: number;
  } | null = null;
  private capped = false;
  private dropped = 0;
  private readonly roomWaiters: (() => void)[] = [];
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

  /** Whether the driver should stop reading the step's output until `room()` settles. */
  get full(): boolean {
    return !this.lost && this.pendingBytes >= this.opts.maxPendingBytes;
  }

  /** Settles once half of the pending bytes are acknowledged (or the lease is gone). */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private wakeRoom(): void {
    if (!this.lost && this.pendingBytes > this.opts.maxPendingBytes / 2) return;
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  line(step: number | null, stream: "stdout" | "stderr" | "system", raw: string): void {
    if (this.lost) return;
    const text = repairText(this.mask(raw));
    // With its newline: empty lines count too, so `yes ''` is capped like any other output.
    const bytes = Buffer.byteLength(text) + 1;
    if (stream === "system") {
      // Skiff's own lines (how a step is confined, its result) always arrive, after the tail so far.
      this.flushTail();
      this.outputBytes += bytes;
      this.queue(step, stream, text);
      return;
    }
    const cap = this.opts.capBytes;
    if (this.tail === null && this.outputBytes + bytes <= cap - Math.floor(cap / 4) && !this.capped) {
      this.outputBytes += bytes;
      this.queue(step, stream, text);
      return;
    }
    // Over the head budget: keep the most recent lines that fit in what is left of the cap.
    this.capped = true;
    if (this.tail !== null && this.tail.step !== step) this.flushTail();
    this.tail ??= { step, lines: [], start: 0, bytes: 0, omittedLines: 0, omittedBytes: 0 };
    const tail = this.tail;
    tail.lines.push({ stream, text, bytes, ts: new Date().toISOString() });
    tail.bytes += bytes;
    const room = Math.max(0, cap - this.outputBytes - MARKER_ROOM);
    // Oldest lines go first. They are skipped by an index rather than shifted off one by one: a
    // flood of short lines would make that quadratic.
    while (tail.bytes > room && tail.start < tail.lines.length) {
      const gone = tail.lines[tail.start++];
      if (!gone) break;
      tail.bytes -= gone.bytes;
      tail.omittedLines++;
      tail.omittedBytes += gone.bytes;
    }
    if (tail.start > 1024 && tail.start * 2 > tail.lines.length) {
      tail.lines = tail.lines.slice(tail.start);
      tail.start = 0;
    }
  }

  /** Sends the truncation marker of the current tail, then its lines. */
  private flushTail(): void {
    const held = this.tail;
    if (held === null) return;
    this.tail = null;
    const tail = { ...held, lines: held.lines.slice(held.start) };
    if (tail.omittedLines > 0) {
      this.outputBytes += MARKER_ROOM;
      const size = (n: number) =>
        n >= 1024 * 1024
          ? `${(n / 1024 / 1024).toFixed(1)} MiB`
          : n >= 1024
            ? `${(n / 1024).toFixed(1)} KiB`
            : `${n} B`;
      this.push({
        type: "log",
        seq: ++this.seq,
        step: tail.step,
        stream: "system",
        ts: tail.lines[0]?.ts ?? new Date().toISOString(),
        text:
          `[log truncated: ${tail.omittedLines} lines (${size(tail.omittedBytes)}) left out here, over the ` +
          `log cap of ${size(this.opts.capBytes)}; ${
            tail.lines.length > 0
              ? `the last ${tail.lines.length} lines of the step follow`
              : "no room is left for the step's last lines"
          }]`,
        omitted: { lines: tail.omittedLines, bytes: tail.omittedBytes },
      });
    }
    for (const l of tail.lines) {
      this.outputBytes += l.bytes;
      this.push({ type: "log", seq: ++this.seq, step: tail.step, stream: l.stream, ts: l.ts, text: l.text });
    }
  }

  private queue(step: number | null, stream: "stdout" | "stderr" | "system", text: string): void {
    if (stream !== "system" && this.pendingBytes > this.opts.maxPendingBytes * 2) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      const note = `[${this.dropped} lines dropped: the worker's buffer was full while the step was being ended]`;
      this.dropped = 0;
      this.push({
        type: "log",
        seq: ++this.seq,
        step,
        stream: "system",
        ts: new Date().toISOString(),
        text: note,
      });
    }
    this.push({ type: "log", seq: ++this.seq, step, stream, ts: new Date().toISOString(), text });
  }

  /**
   * Sent at once, not with the next batch: the job shows as running (and the step as started) while
   * the sandbox is still coming up, instead of up to one batch window later.
   */
  stepStarted(step: number): void {
    this.push({ type: "step.started", step, ts: new Date().toISOString() });
    this.kick(0);
  }

  stepFinished(
    step: number,
    outcome: "succeeded" | "failed" | "canceled" | "timed_out",
    exitCode: number | null,
  ): void {
    this.flushTail();
    this.push({ type: "step.finished", step, outcome, exitCode, ts: new Date().toISOString() });
    this.kick(0);
  }

  private push(event: JobEvent): void {
    if (this.lost) return;
    this.pending.push(event);
    this.pendingBytes += sizeOf(event);
    this.kick(this.pendingBytes >= this.opts.batchBytes ? 0 : this.opts.batchMs);
  }

  private kick(delay: number): void {
    if (this.inflight) return;
    if (this.timer && delay > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.startSend();
    }, delay);
  }

  /**
   * The one upload loop, started if none runs. There is never a second: two loops would send the
   * same first batch and each then remove a batch from the queue, losing one unsent.
   */
  private startSend(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.inflight ??= this.sendAll().finally(() => {
      this.inflight = null;
      if (this.pending.length > 0 && !this.lost) this.kick(this.opts.batchMs);
    });
    return this.inflight;
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
        this.wakeRoom();
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
          this.pendingBytes = 0;
          this.tail = null;
          this.wakeRoom();
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
    this.wakeRoom();
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
    this.flushTail();
    while (!this.lost && (this.pending.length > 0 || this.inflight)) await this.startSend();
  }
}
