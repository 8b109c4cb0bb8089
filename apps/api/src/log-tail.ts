import { isFinal, type JobState, type LogLine } from "@skiff/protocol";
import type { Store } from "@skiff/store";

/** Lines a shared reader keeps for its followers; older ones are read from the store by whoever needs them. */
const KEPT_LINES = 5_000;
const PAGE = 1000;

export interface TailEnd {
  state: JobState | "unknown";
  exitCode: number | null;
}

/**
 * One reader of a job's new log lines on this replica, shared by all who follow that job's stream:
 * on each wake-up it reads what is new once, and the followers that are caught up take it from
 * here, so 500 followers of a busy job cost one query per wake-up instead of 1,000.
 *
 * It holds every line with a seq above `floor`, up to `last`, at most KEPT_LINES of them (seqs
 * have gaps between attempts, so completeness is tracked by that range, not by counting). A
 * follower whose position is below `floor` reads its backlog from the store itself, in pages, until
 * it reaches the range.
 */
export class LogTail {
  private lines: LogLine[] = [];
  /** Everything with a seq in (floor, last] is in `lines`; null until a follower has caught up. */
  private floor: number | null = null;
  private last = 0;
  private ended: TailEnd | null = null;
  private reading: Promise<void> | null = null;
  private again = false;
  private starting: Promise<void> | null = null;
  private readonly waiting = new Set<() => void>();
  followers = 0;

  constructor(
    private readonly store: Store,
    readonly jobId: string,
  ) {}

  /** The lines after `after` when it is within the held range, else null (read the store). */
  linesAfter(after: number): LogLine[] | null {
    if (this.floor === null || after < this.floor) return null;
    if (after >= this.last) return [];
    let lo = 0;
    let hi = this.lines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.lines[mid]?.seq ?? 0) <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.lines.slice(lo);
  }

  /** Set once the job is final and every line up to `last` is held: followers at `last` end. */
  endAt(after: number): TailEnd | null {
    return this.ended !== null && this.floor !== null && after >= this.last ? this.ended : null;
  }

  /**
   * A follower read the store to its end: the held range starts at the last stored seq, which the
   * reader looks up itself (a follower's own position is the client's word, and may lie past the end).
   */
  caughtUp(): Promise<void> {
    if (this.floor !== null) return Promise.resolve();
    this.starting ??= this.store.lastLogSeq(this.jobId).then((seq) => {
      this.floor ??= seq;
      this.last = Math.max(this.last, seq);
      this.refresh();
    });
    return this.starting.catch(() => {
      this.starting = null;
    });
  }

  /**
   * Settles with true once there is something after `after` (new lines or the end), at once if
   * there already is, or with false after `ms`.
   */
  changed(after: number, ms: number): Promise<boolean> {
    if (this.floor !== null && (this.last > after || this.endAt(after))) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiting = this.waiting;
      const done = (changed: boolean) => {
        clearTimeout(timer);
        waiting.delete(wake);
        resolve(changed);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), ms);
      waiting.add(wake);
    });
  }

  /** Reads what is new (one reader at a time; a wake-up during a read makes it read again). */
  refresh(): void {
    if (this.floor === null) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.read()
      .catch(() => {
        // The followers' own timeout re-reads; a failing store shows in their next read.
      })
      .finally(() => {
        this.reading = null;
        for (const wake of [...this.waiting]) wake();
        if (this.again) {
          this.again = false;
          this.refresh();
        }
      });
  }

  private async read(): Promise<void> {
    for (;;) {
      const page = await this.store.listLogs(this.jobId, this.last, PAGE);
      if (page.length > 0) {
        this.lines.push(...page);
        this.last = page[page.length - 1]?.seq ?? this.last;
        const over = this.lines.length - KEPT_LINES;
        if (over > 0) {
          this.floor = this.lines[over - 1]?.seq ?? this.floor;
          this.lines.splice(0, over);
        }
      }
      if (page.length < PAGE) break;
    }
    if (this.ended) return;
    const job = await this.store.getJob(this.jobId);
    if (!job || isFinal(job.state)) {
      // Lines can land between the read above and the finish: read once more before ending.
      const more = await this.store.listLogs(this.jobId, this.last, 1);
      if (more.length > 0) {
        this.again = true;
        return;
      }
      this.ended = { state: job?.state ?? "unknown", exitCode: job?.exitCode ?? null };
    }
  }
}

/** The shared readers of this replica, one per followed job, gone with its last follower. */
export class LogTails {
  private readonly tails = new Map<string, LogTail>();

  constructor(private readonly store: Store) {}

  get size(): number {
    return this.tails.size;
  }

  join(jobId: string): LogTail {
    let tail = this.tails.get(jobId);
    if (!tail) {
      tail = new LogTail(this.store, jobId);
      this.tails.set(jobId, tail);
    }
    tail.followers++;
    return tail;
  }

  leave(tail: LogTail): void {
    tail.followers--;
    if (tail.followers <= 0 && this.tails.get(tail.jobId) === tail) this.tails.delete(tail.jobId);
  }

  /** New lines (or the end) for this job: its reader, if anyone follows it here, reads them. */
  wake(jobId: string): void {
    this.tails.get(jobId)?.refresh();
  }
}
