import { type EventPayload, isFinal, type Job, type JobCounts, type JobState } from "@skiff/protocol";
import { Emitter } from "./emitter.ts";

/** How many jobs the console keeps; the oldest finished ones go first, queued ones never. */
const CAP = 2000;

const RANK: Record<JobState, number> = {
  queued: 0,
  assigned: 1,
  running: 2,
  canceling: 3,
  succeeded: 4,
  failed: 4,
  canceled: 4,
  timed_out: 4,
};

/**
 * Whether `next` is older than `have`. A job only moves forward: its epoch goes up with every claim,
 * requeue, timeout and cancel of a queued job, and within one epoch its state only advances. So a
 * fetch answered before an event that has since been applied, or an event that arrives after a
 * newer fetch, is recognised and ignored instead of turning the job back.
 */
function older(next: { epoch: number; state: JobState }, have: { epoch: number; state: JobState }): boolean {
  return next.epoch < have.epoch || (next.epoch === have.epoch && RANK[next.state] < RANK[have.state]);
}

/**
 * The newest jobs (and every queued one the API listed), kept current by job events. Times the events
 * do not carry (started, finished) are stamped on arrival and replaced by the server's on the next
 * fetch of that job.
 */
export class JobStore extends Emitter {
  private readonly byId = new Map<string, Job>();
  /** How many jobs are kept: CAP, plus every older page the operator asked for. */
  private cap = CAP;
  /** Where the next older page starts on the server (null: none left, or none asked for yet). */
  olderCursor: string | null = null;
  private sorted: Job[] | null = null;
  private readonly stateCounts = new Map<JobState, number>();
  /**
   * The server's counts over the whole table (`/v1/stats/jobs`), refreshed shortly after job events:
   * the console holds a window of jobs, so counting its own rows would stop at that window.
   */
  private totals: JobCounts | null = null;

  setTotals(totals: JobCounts): void {
    this.totals = { states: { ...totals.states }, queued: { ...totals.queued } };
    this.changed();
  }

  /** How many jobs the server holds in all, when its counts are known. */
  serverTotal(): number | null {
    return this.totals ? Object.values(this.totals.states).reduce((a, b) => a + b, 0) : null;
  }

  /** Jobs in `state` on the server (the rows held here until the server's counts arrive). */
  total(state: JobState): number {
    return this.totals ? (this.totals.states[state] ?? 0) : this.countOf(state);
  }

  /** Whether a list has come from the server yet (until then there is nothing to page from). */
  loaded = false;

  load(jobs: readonly Job[], olderCursor: string | null = null): void {
    this.loaded = true;
    this.byId.clear();
    this.stateCounts.clear();
    this.cap = CAP;
    this.olderCursor = olderCursor;
    for (const j of jobs) this.put(j);
    this.trim();
    this.sorted = null;
    this.changed();
  }

  /** An older page the operator asked for: kept in addition to the newest jobs, not in their place. */
  addOlder(jobs: readonly Job[], nextCursor: string | null): number {
    let added = 0;
    for (const j of jobs) {
      if (this.byId.has(j.id)) continue;
      this.put(j);
      added++;
    }
    this.cap += added;
    this.olderCursor = nextCursor;
    this.sorted = null;
    this.changed();
    return added;
  }

  upsert(job: Job): void {
    const existing = this.byId.get(job.id);
    if (existing && older(job, existing)) return;
    if (existing) {
      this.count(existing.state, -1);
      this.moveTotal(existing, job.state);
      Object.assign(existing, job);
      this.count(job.state, 1);
    } else {
      this.put(job);
      this.trim();
      this.sorted = null;
    }
    this.changed();
  }

  /** Applies a state change; false when the job is unknown (the caller fetches it). */
  state(p: EventPayload<"job.state">, now = Date.now()): boolean {
    const j = this.byId.get(p.jobId);
    if (!j) return false;
    if (older(p, j)) return true;
    const at = new Date(now).toISOString();
    this.count(j.state, -1);
    this.moveTotal(j, p.state);
    j.state = p.state;
    this.count(p.state, 1);
    j.agentId = p.agentId;
    j.epoch = p.epoch;
    // Older APIs sent neither; keep what the last fetch said then.
    if (p.attempt !== undefined) j.attempt = p.attempt;
    if (p.maxAttempts !== undefined) j.maxAttempts = p.maxAttempts;
    if (p.exitCode !== undefined) j.exitCode = p.exitCode;
    // The server's times when the event has them; an older API's events are stamped on arrival
    // and replaced by the server's on the next fetch of the job.
    if (p.startedAt !== undefined) j.startedAt = p.startedAt;
    else if (p.state === "running" && !j.startedAt) j.startedAt = at;
    else if (p.state === "queued") j.startedAt = null;
    if (p.finishedAt !== undefined) j.finishedAt = p.finishedAt;
    else if (isFinal(p.state) && !j.finishedAt) j.finishedAt = at;
    if (p.state === "canceling" || p.state === "canceled") j.cancelReason = p.reason ?? j.cancelReason;
    this.changed();
    return true;
  }

  get(id: string): Job | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Newest first. */
  list(): readonly Job[] {
    if (!this.sorted)
      // ISO times and ids compare as plain strings (no locale): cheap for a hundred thousand jobs.
      this.sorted = [...this.byId.values()].sort((a, b) =>
        a.createdAt === b.createdAt ? (b.id < a.id ? -1 : 1) : b.createdAt < a.createdAt ? -1 : 1,
      );
    return this.sorted;
  }

  /**
   * Queued jobs on queues no online agent serves, by queue: they wait for a worker that is not there,
   * which is not the same as an ordinary backlog.
   */
  unserved(served: ReadonlySet<string>): Map<string, number> {
    const out = new Map<string, number>();
    if (this.totals) {
      for (const [queue, n] of Object.entries(this.totals.queued))
        if (n > 0 && !served.has(queue)) out.set(queue, n);
      return out;
    }
    for (const j of this.list())
      if (j.state === "queued" && !served.has(j.queue)) out.set(j.queue, (out.get(j.queue) ?? 0) + 1);
    return out;
  }

  countOf(state: JobState): number {
    return this.stateCounts.get(state) ?? 0;
  }

  /**
   * Moves a job the console knows from its state to `to` in the server's counts too, so they answer
   * at once; the refetch that every job event schedules then replaces them with the server's own.
   */
  private moveTotal(j: Job, to: JobState): void {
    const t = this.totals;
    if (!t || j.state === to) return;
    t.states[j.state] = Math.max(0, (t.states[j.state] ?? 0) - 1);
    t.states[to] = (t.states[to] ?? 0) + 1;
    if (j.state === "queued") t.queued[j.queue] = Math.max(0, (t.queued[j.queue] ?? 0) - 1);
    if (to === "queued") t.queued[j.queue] = (t.queued[j.queue] ?? 0) + 1;
  }

  private put(j: Job): void {
    this.byId.set(j.id, { ...j });
    this.count(j.state, 1);
  }

  private count(state: JobState, by: number): void {
    this.stateCounts.set(state, (this.stateCounts.get(state) ?? 0) + by);
  }

  private trim(): void {
    if (this.byId.size <= this.cap) return;
    const finished = [...this.byId.values()]
      .filter((j) => isFinal(j.state))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const j of finished.slice(0, this.byId.size - this.cap)) {
      this.byId.delete(j.id);
      this.count(j.state, -1);
    }
  }
}
