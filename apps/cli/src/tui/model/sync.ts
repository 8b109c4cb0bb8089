import { EVENT_SCHEMAS, type EventName, type EventPayload, isFinal, TOPICS } from "@skiff/protocol";
import { type Backend, type Feed, isGone } from "../data/backend.ts";
import type { AgentStore } from "./agents.ts";
import { describeEvent } from "./describe.ts";
import type { AuditStore, FleetStore } from "./fleet.ts";
import type { JobStore } from "./jobs.ts";
import type { MetricsStore } from "./metrics.ts";
import type { SessionStore } from "./session.ts";

export interface Stores {
  session: SessionStore;
  agents: AgentStore;
  jobs: JobStore;
  fleet: FleetStore;
  audit: AuditStore;
  metrics: MetricsStore;
}

export const JOB_PAGE = 500;
export const AUDIT_PAGE = 1000;
/** Beyond this many unknown agents or jobs at once, one reload beats that many single fetches. */
const BATCH = 50;
/** A failed fetch is tried again after this, doubling up to FETCH_RETRY_MAX_MS while it keeps failing. */
const FETCH_RETRY_MS = 150;
const FETCH_RETRY_MAX_MS = 5_000;

function errorText(err: unknown): string {
  const e = err as { message?: string; code?: string; status?: number };
  return e.code && e.status ? `${e.message} (${e.code})` : (e.message ?? String(err));
}

/**
 * Keeps the stores current: REST for whole lists (at start, and again when the event stream could not
 * resume), `/v1/events` for everything after. Objects an event names but the stores do not hold yet
 * are fetched in small batches.
 */
export class Sync {
  private feed: Feed | null = null;
  private lastEventId = 0;
  private seenReady = false;
  private loading: Promise<void> | null = null;
  private again = false;
  private readonly missingAgents = new Set<string>();
  private readonly missingJobs = new Set<string>();
  /** The pause before the next fetch of what is missing; grows while fetches keep failing. */
  private fetchDelay = FETCH_RETRY_MS;
  private fetchTimer: NodeJS.Timeout | undefined;
  /** The pending refetches (`later`), by what they fetch. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly jobListeners = new Set<(jobId: string) => void>();
  private stopped = false;

  constructor(
    private readonly backend: Backend,
    private readonly s: Stores,
  ) {}

  start(): void {
    this.feed = this.backend.events(TOPICS, {
      onEvent: (name, data, id) => this.onEvent(name, data, id),
      onState: (state) => {
        if (this.stopped) return;
        this.s.session.setConnection(state);
        // Back in touch: what could not be fetched meanwhile is fetched now, not after the backoff.
        if (state.kind === "live" && this.missingJobs.size + this.missingAgents.size > 0) {
          this.fetchDelay = FETCH_RETRY_MS;
          clearTimeout(this.fetchTimer);
          this.fetchTimer = undefined;
          this.scheduleFetch();
        }
      },
    });
    void this.reload();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.fetchTimer);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.feed?.close();
    this.feed = null;
  }

  /** Calls `fn` with the id of every job whose state changes. */
  onJobChange(fn: (jobId: string) => void): () => void {
    this.jobListeners.add(fn);
    return () => this.jobListeners.delete(fn);
  }

  /** Whether the lists are being loaded (at the start, or again after a reset). */
  get loadingLists(): boolean {
    return this.loading !== null;
  }

  /** Loads every list again; overlapping calls fold into one more run. */
  reload(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        await this.loadAll();
      } while (this.again && !this.stopped);
      this.loading = null;
    })();
    return this.loading;
  }

  /**
   * The next page of older jobs from the server (the console holds the newest ones): added to what
   * is shown. Resolves to how many came, or null when there were none left to load.
   */
  async loadOlderJobs(): Promise<number | null> {
    const cursor = this.s.jobs.olderCursor;
    if (cursor === null) return null;
    const page = await this.backend.listJobPage({ limit: JOB_PAGE, cursor });
    return this.s.jobs.addOlder(page.items, page.nextCursor);
  }

  /** The next page of older audit entries; how many came, or null when the log has no more. */
  async loadOlderAudit(): Promise<number | null> {
    const cursor = this.s.audit.olderCursor;
    if (cursor === null) return null;
    const page = await this.backend.listAudit({ limit: AUDIT_PAGE, cursor });
    return this.s.audit.addOlder(page.items, page.nextCursor);
  }

  refetchFleet(delayMs = 250): void {
    this.later(
      "fleet",
      delayMs,
      () => this.backend.getFleet(),
      (f) => this.s.fleet.set(f),
    );
  }

  /** The server's job counts again, at most once per `delayMs` however many job events arrive. */
  refetchCounts(delayMs = 1000): void {
    this.later(
      "counts",
      delayMs,
      () => this.backend.jobCounts(),
      (c) => {
        this.s.jobs.setTotals(c);
        this.s.metrics.queueDepth(this.s.jobs.total("queued"));
      },
    );
  }

  /**
   * Fetches after `delayMs`, once however many calls come meanwhile (a burst of events is one
   * request), and applies the answer unless the sync has stopped since. What could not be fetched (the
   * API restarting) is left: the next event, or the reload after a reconnect, asks again.
   */
  private later<T>(slot: string, delayMs: number, fetch: () => Promise<T>, apply: (value: T) => void): void {
    if (this.timers.has(slot) || this.stopped) return;
    this.timers.set(
      slot,
      setTimeout(() => {
        this.timers.delete(slot);
        fetch().then(
          (value) => {
            if (!this.stopped) apply(value);
          },
          () => {},
        );
      }, delayMs),
    );
  }

  private async loadAll(): Promise<void> {
    const { session, agents, jobs, fleet, audit, metrics } = this.s;
    const b = this.backend;
    const fail = (err: unknown) => {
      if (!this.stopped) session.say(errorText(err), "error");
    };
    const who = await b.whoami().catch((err) => {
      fail(err);
      return null;
    });
    if (this.stopped) return;
    if (who) session.setWho(who);
    await Promise.all([
      b.listAgents().then((list) => agents.load(list), fail),
      // The server's counts with the rows, so the first frame never counts a page as the whole.
      // An older API has no such route: the counts are then the console's own rows, as before.
      Promise.all([
        b.listJobPage({ limit: JOB_PAGE }),
        b.listJobs({ state: "queued", limit: JOB_PAGE }),
        b.jobCounts().catch(() => null),
      ]).then(([page, queued, counts]) => {
        const recent = page.items;
        const ids = new Set(recent.map((r) => r.id));
        jobs.load([...recent, ...queued.filter((q) => !ids.has(q.id))], page.nextCursor);
        if (counts) jobs.setTotals(counts);
        metrics.queueDepth(jobs.total("queued"));
      }, fail),
      b.getFleet().then((f) => fleet.set(f), fail),
      who?.role === "viewer"
        ? Promise.resolve(audit.deny("the audit log needs the operator role; this token is a viewer"))
        : b.listAudit({ limit: AUDIT_PAGE }).then((page) => {
            const list = page.items;
            audit.load(list, page.nextCursor);
            // The feed starts with the latest audited changes rather than empty.
            metrics.backfill(
              list.slice(0, 20).flatMap((entry) => {
                const e = describeEvent("audit.appended", entry, agents, Date.parse(entry.at));
                return e ? [e] : [];
              }),
            );
          }, fail),
      // The charts start with the last few minutes as the API saw them. An older API has no such
      // route: the charts then fill as events arrive, as before.
      b
        .jobHistory(metrics.bucketMs / 1000, metrics.buckets)
        .then((h) => metrics.seed(h))
        .catch(() => {}),
    ]);
  }

  private onEvent(name: string, data: unknown, id: string | undefined): void {
    if (this.stopped) return;
    if (name === "ready") {
      this.onReady(data);
      return;
    }
    if (name === "reset") {
      void this.reload();
      return;
    }
    if (name === "shutdown") {
      this.s.session.say("the API is shutting down; reconnecting", "error");
      return;
    }
    if (!(name in EVENT_SCHEMAS)) return;
    const schema = EVENT_SCHEMAS[name as EventName];
    const parsed = schema.safeParse(data);
    if (!parsed.success) return;
    const n = Number(id);
    if (Number.isSafeInteger(n)) this.lastEventId = n;
    this.apply(name as EventName, parsed.data);
  }

  private onReady(data: unknown): void {
    const serverLast = Number((data as { lastEventId?: unknown } | null)?.lastEventId ?? 0);
    // The first stream of a session, or a server that has forgotten our place (it restarted: its
    // event ids start again), cannot be resumed: load the lists afresh.
    if (!this.seenReady || serverLast < this.lastEventId) void this.reload();
    this.seenReady = true;
    this.lastEventId = serverLast;
  }

  private apply(name: EventName, p: unknown): void {
    const { agents, jobs, fleet, audit, metrics } = this.s;
    const described = describeEvent(name, p, agents);
    if (described) metrics.event(described);
    switch (name) {
      case "agent.registered": {
        const reg = p as EventPayload<"agent.registered">;
        if (reg.agent) agents.upsert(reg.agent);
        else if (!agents.has(reg.agentId)) this.fetchAgent(reg.agentId);
        this.refetchFleet();
        return;
      }
      case "agent.heartbeat": {
        const hb = p as Parameters<AgentStore["heartbeat"]>[0];
        if (!agents.heartbeat(hb)) this.fetchAgent(hb.agentId);
        return;
      }
      case "agent.status": {
        const st = p as Parameters<AgentStore["status"]>[0];
        if (!agents.status(st)) this.fetchAgent(st.agentId);
        this.refetchFleet();
        return;
      }
      case "job.created": {
        const jobId = (p as { jobId: string }).jobId;
        if (!jobs.has(jobId)) this.fetchJob(jobId);
        this.refetchCounts();
        return;
      }
      case "job.state": {
        const js = p as Parameters<JobStore["state"]>[0];
        if (!jobs.state(js)) this.fetchJob(js.jobId);
        this.refetchCounts();
        if (isFinal(js.state)) metrics.jobFinished(js.state === "succeeded");
        metrics.queueDepth(jobs.total("queued"));
        for (const fn of this.jobListeners) fn(js.jobId);
        return;
      }
      case "fleet.changed":
        fleet.merge(p as Parameters<FleetStore["merge"]>[0]);
        this.refetchFleet();
        return;
      case "audit.appended":
        audit.append(p as Parameters<AuditStore["append"]>[0]);
        return;
    }
  }

  private fetchAgent(id: string): void {
    this.missingAgents.add(id);
    this.scheduleFetch();
  }

  private fetchJob(id: string): void {
    this.missingJobs.add(id);
    this.scheduleFetch();
  }

  private scheduleFetch(): void {
    if (this.fetchTimer || this.stopped) return;
    this.fetchTimer = setTimeout(() => {
      this.fetchTimer = undefined;
      void this.fetchMissing();
    }, this.fetchDelay);
  }

  private async fetchMissing(): Promise<void> {
    const { agents, jobs, metrics } = this.s;
    const agentIds = [...this.missingAgents];
    const jobIds = [...this.missingJobs];
    this.missingAgents.clear();
    this.missingJobs.clear();
    const b = this.backend;
    // Nothing heard of is dropped while the API cannot answer (it may be restarting): a failed
    // fetch stays missing and is tried again, less often while failures go on. Only an object the
    // API says does not exist (404) is given up.
    const failed = { agents: [] as string[], jobs: [] as string[] };
    const settle = (results: PromiseSettledResult<unknown>[], ids: string[], into: string[]) =>
      results.forEach((r, k) => {
        const id = ids[k];
        if (r.status === "rejected" && id !== undefined && !isGone(r.reason)) into.push(id);
      });
    if (agentIds.length > BATCH) {
      await b.listAgents().then(
        (l) => agents.load(l),
        () => failed.agents.push(...agentIds),
      );
    } else {
      const results = await Promise.allSettled(
        agentIds.map((id) => b.getAgent(id).then((a) => agents.upsert(a))),
      );
      settle(results, agentIds, failed.agents);
    }
    // Every job heard of is fetched, BATCH at a time (a burst of 300 submits is 300 jobs to show,
    // not the first 50).
    for (let i = 0; i < jobIds.length && !this.stopped; i += BATCH) {
      const chunk = jobIds.slice(i, i + BATCH);
      const results = await Promise.allSettled(chunk.map((id) => b.getJob(id).then((j) => jobs.upsert(j))));
      settle(results, chunk, failed.jobs);
    }
    if (this.stopped) return;
    if (jobIds.length > 0) metrics.queueDepth(jobs.total("queued"));
    for (const id of failed.agents) if (!agents.has(id)) this.missingAgents.add(id);
    for (const id of failed.jobs) if (!jobs.has(id)) this.missingJobs.add(id);
    const anyFailed = failed.agents.length + failed.jobs.length > 0;
    this.fetchDelay = anyFailed ? Math.min(this.fetchDelay * 2, FETCH_RETRY_MAX_MS) : FETCH_RETRY_MS;
    if (this.missingJobs.size + this.missingAgents.size > 0) this.scheduleFetch();
  }
}
