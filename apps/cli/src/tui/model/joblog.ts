import { attemptOfSeq, type JobWithSteps, LogLine } from "@skiff/protocol";
import type { Backend, Feed } from "../data/backend.ts";
import { type LogEnd, LogEnd as LogEndSchema } from "../data/schemas.ts";
import { Emitter } from "./emitter.ts";
import { JobDetailStore } from "./jobdetail.ts";
import type { FeedState } from "./types.ts";

export type LogEntry =
  | { kind: "line"; line: LogLine }
  /** Where a step's output begins, in the attempt that wrote it. */
  | { kind: "step"; step: number; attempt: number }
  /** Where an attempt after the first begins. */
  | { kind: "attempt"; attempt: number };

/** Lines kept in memory per open log; older ones are dropped (and counted) beyond it. */
const MAX_ENTRIES = 200_000;

/**
 * One job's log while its view is open: the lines so far and as they are written (resuming from the
 * last seq after a drop), a marker where each step's output begins, and the job itself, fetched again
 * when a step starts or the job ends so markers and header show states and exit codes.
 */
export class JobLogStore extends Emitter {
  entries: LogEntry[] = [];
  dropped = 0;
  end: LogEnd | null = null;
  feedState: FeedState = { kind: "connecting" };
  private lastSeq = 0;
  private lastStep: number | null = null;
  private lastAttempt: number | null = null;
  private feed: Feed | null = null;
  private stopped = false;
  /** The job itself, as the Job view holds it. */
  private readonly detail: JobDetailStore;

  constructor(
    private readonly backend: Backend,
    readonly jobId: string,
  ) {
    super();
    this.detail = new JobDetailStore(backend, jobId);
    this.detail.subscribe(() => {
      // No such job: following its log would only retry forever. Say so once and stop.
      if (this.detail.gone && this.feed) {
        this.feed.close();
        this.feed = null;
        this.feedState = { kind: "ended" };
      }
      this.changed();
    });
  }

  get job(): JobWithSteps | null {
    return this.detail.job;
  }

  get error(): string | null {
    return this.detail.error;
  }

  start(): void {
    this.stopped = false;
    this.detail.start();
    this.feed = this.backend.jobLog(this.jobId, {
      onEvent: (name, data) => this.onEvent(name, data),
      onState: (state) => {
        if (this.stopped) return;
        this.feedState = state;
        this.changed();
      },
    });
  }

  stop(): void {
    this.stopped = true;
    this.detail.stop();
    this.feed?.close();
    this.feed = null;
  }

  /** The job changed state elsewhere (a `job.state` event): its steps and exit codes are worth a look. */
  jobChanged(): void {
    this.detail.jobChanged(300);
  }

  append(line: LogLine): void {
    if (line.seq <= this.lastSeq) return;
    this.lastSeq = line.seq;
    const attempt = attemptOfSeq(line.seq);
    if (attempt !== this.lastAttempt) {
      // The first line seen may already be a later attempt's (the view opened on a retried job).
      if (attempt > 1) this.entries.push({ kind: "attempt", attempt });
      this.lastAttempt = attempt;
      this.lastStep = null;
    }
    if (line.step !== null && line.step !== this.lastStep) {
      this.entries.push({ kind: "step", step: line.step, attempt });
      this.lastStep = line.step;
      this.detail.jobChanged(300);
    }
    this.entries.push({ kind: "line", line });
    if (this.entries.length > MAX_ENTRIES) {
      const cut = Math.floor(MAX_ENTRIES / 10);
      this.entries.splice(0, cut);
      this.dropped += cut;
    }
    this.changed();
  }

  private onEvent(name: string, data: unknown): void {
    if (this.stopped) return;
    if (name === "line") {
      const line = LogLine.safeParse(data);
      if (line.success) this.append(line.data);
    } else if (name === "end") {
      const end = LogEndSchema.safeParse(data);
      if (end.success) this.end = end.data;
      this.detail.jobChanged(0);
      this.changed();
    }
  }
}
