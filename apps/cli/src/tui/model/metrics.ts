import { Emitter } from "./emitter.ts";

export interface RecentEvent {
  at: number;
  name: string;
  text: string;
  level: "info" | "good" | "warn" | "bad";
}

export interface Series {
  /** Bucket start times, oldest first. */
  times: number[];
  queueDepth: number[];
  /** Jobs finished per minute in each bucket. */
  throughput: number[];
  succeeded: number;
  finished: number;
}

/**
 * What the Overview charts: queue depth and throughput in time buckets, filled as events arrive (no
 * timer: a bucket with no event carries the depth forward), plus the latest events for the feed.
 */
export class MetricsStore extends Emitter {
  private readonly depth = new Map<number, number>();
  private readonly done = new Map<number, number>();
  private lastDepth = 0;
  private succeeded = 0;
  private finished = 0;
  private readonly recent: RecentEvent[] = [];

  constructor(
    readonly bucketMs = 5_000,
    readonly buckets = 60,
    private readonly keepEvents = 200,
  ) {
    super();
  }

  private bucket(at: number): number {
    return Math.floor(at / this.bucketMs) * this.bucketMs;
  }

  queueDepth(depth: number, at = Date.now()): void {
    if (depth === this.lastDepth && this.depth.size > 0) return;
    this.lastDepth = depth;
    this.depth.set(this.bucket(at), depth);
    this.prune(at);
    this.changed();
  }

  jobFinished(succeeded: boolean, at = Date.now()): void {
    const b = this.bucket(at);
    this.done.set(b, (this.done.get(b) ?? 0) + 1);
    this.finished++;
    if (succeeded) this.succeeded++;
    this.prune(at);
    this.changed();
  }

  /**
   * The recent past as the API reports it (`GET /v1/stats/history`), so charts start full on
   * attach. What events have already counted is kept: a bucket takes the larger of the two.
   */
  seed(buckets: readonly { at: string; finished: number; succeeded: number; queued: number }[]): void {
    for (const b of buckets) {
      const at = this.bucket(Date.parse(b.at));
      if (!this.depth.has(at)) this.depth.set(at, b.queued);
      this.done.set(at, Math.max(this.done.get(at) ?? 0, b.finished));
    }
    // The totals count what finished in the window shown, then what events add.
    if (this.finished === 0) {
      this.finished = buckets.reduce((n, b) => n + b.finished, 0);
      this.succeeded = buckets.reduce((n, b) => n + b.succeeded, 0);
    }
    this.prune(Date.now());
    this.changed();
  }

  /** Older events (the audit log's latest entries, oldest first) behind those already shown. */
  backfill(events: readonly RecentEvent[]): void {
    const known = new Set(this.recent.map((e) => `${e.name} ${e.text}`));
    const older = events.filter((e) => !known.has(`${e.name} ${e.text}`)).sort((a, b) => b.at - a.at);
    this.recent.push(...older);
    this.recent.sort((a, b) => b.at - a.at);
    if (this.recent.length > this.keepEvents) this.recent.length = this.keepEvents;
    this.changed();
  }

  event(e: RecentEvent): void {
    this.recent.unshift(e);
    if (this.recent.length > this.keepEvents) this.recent.length = this.keepEvents;
    this.changed();
  }

  events(): readonly RecentEvent[] {
    return this.recent;
  }

  series(now = Date.now()): Series {
    const last = this.bucket(now);
    const first = last - (this.buckets - 1) * this.bucketMs;
    const times: number[] = [];
    const queueDepth: number[] = [];
    const throughput: number[] = [];
    let depth = this.depthBefore(first);
    for (let t = first; t <= last; t += this.bucketMs) {
      depth = this.depth.get(t) ?? depth;
      times.push(t);
      queueDepth.push(depth);
      throughput.push(((this.done.get(t) ?? 0) * 60_000) / this.bucketMs);
    }
    return { times, queueDepth, throughput, succeeded: this.succeeded, finished: this.finished };
  }

  private depthBefore(t: number): number {
    let best = -1;
    let value = 0;
    for (const [k, v] of this.depth)
      if (k < t && k > best) {
        best = k;
        value = v;
      }
    return value;
  }

  private prune(now: number): void {
    const oldest = this.bucket(now) - this.buckets * this.bucketMs * 2;
    for (const map of [this.depth, this.done]) for (const k of map.keys()) if (k < oldest) map.delete(k);
  }
}
