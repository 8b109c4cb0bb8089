import type {
  Agent,
  AuditEntry,
  FleetUpdateBody,
  Job,
  JobState,
  JobWithSteps,
  LogLine,
} from "@skiff/protocol";
import type { Backend, Feed, FeedHandlers, FeedState } from "../../src/tui/data/backend.ts";
import type { FleetView, Whoami } from "../../src/tui/data/schemas.ts";

const T0 = Date.parse("2026-01-02T03:04:05Z");
export const iso = (ms: number) => new Date(ms).toISOString();

export function agent(over: Partial<Agent> & { id: string; name: string }, now = Date.now()): Agent {
  return {
    version: "0.1.0",
    status: "online",
    activity: "idle",
    slots: 2,
    labels: {},
    queues: ["default"],
    sandbox: "bwrap",
    unsafe: false,
    resources: { memoryUsedMb: 1024, memoryTotalMb: 8192, load1: 0.5 },
    runningJobs: [],
    drainRequested: false,
    registeredAt: iso(now - 3_600_000),
    lastHeartbeatAt: iso(now - 2_000),
    heartbeatAgeMs: 2_000,
    ...over,
  };
}

export function job(
  over: Partial<Job> & { id: string; name: string },
  state: JobState = "succeeded",
): JobWithSteps {
  return {
    queue: "default",
    state,
    spec: {
      name: over.name,
      queue: "default",
      timeoutSeconds: 600,
      maxAttempts: 3,
      resources: { memoryMb: 512, cpus: 1, pids: 256 },
      env: {},
      secrets: [],
      steps: [{ name: "build", run: "make", network: "off" }],
    },
    attempt: 1,
    maxAttempts: 3,
    epoch: 1,
    agentId: null,
    exitCode: state === "succeeded" ? 0 : state === "failed" ? 2 : null,
    error: null,
    cancelReason: null,
    createdBy: "admin",
    createdAt: iso(T0),
    assignedAt: null,
    startedAt: iso(T0 + 1000),
    finishedAt: ["succeeded", "failed", "canceled", "timed_out"].includes(state) ? iso(T0 + 61_000) : null,
    logBytes: 0,
    logTruncated: false,
    retryOf: null,
    steps: [
      {
        index: 0,
        name: "build",
        state: "succeeded",
        exitCode: 0,
        startedAt: iso(T0),
        finishedAt: iso(T0 + 1),
      },
      {
        index: 1,
        name: "test",
        state: state === "running" ? "running" : "succeeded",
        exitCode: null,
        startedAt: iso(T0),
        finishedAt: null,
      },
    ],
    ...over,
  };
}

export function auditEntry(
  seq: number,
  action: string,
  actor: string,
  details: Record<string, unknown> = {},
): AuditEntry {
  return {
    seq,
    at: iso(T0 + seq * 1000),
    actor,
    role: "admin",
    action,
    target: action.startsWith("fleet") ? "fleet" : `tgt_${seq}`,
    outcome: "ok",
    requestId: `req-${seq}`,
    sourceIp: "127.0.0.1",
    details,
    prevHash: "0".repeat(64),
    hash: "f".repeat(64),
  };
}

export function fleetView(over: Partial<FleetView> = {}): FleetView {
  return {
    mode: "manual",
    replicas: 3,
    min: 0,
    max: 10,
    warm: 0,
    desired: 3,
    actual: 2,
    scaler: "embedded",
    leader: { holder: "skiff-up@host", epoch: 4, since: iso(T0) },
    updatedAt: iso(T0),
    updatedBy: "alice",
    decisions: [
      { at: iso(T0), leaderEpoch: 4, desired: 3, actual: 2, reason: "manual: 3 replicas" },
      { at: iso(T0 - 60_000), leaderEpoch: 4, desired: 2, actual: 2, reason: "manual: 2 replicas" },
    ],
    ...over,
  };
}

/** A feed the test drives: it records its handlers so events and states can be pushed in. */
export class FakeFeed implements Feed {
  closed = false;
  constructor(readonly handlers: FeedHandlers) {}
  emit(name: string, data: unknown, id?: number): void {
    if (!this.closed) this.handlers.onEvent(name, data, id === undefined ? undefined : String(id));
  }
  state(s: FeedState): void {
    if (!this.closed) this.handlers.onState(s);
  }
  close(): void {
    this.closed = true;
  }
}

/** A backend of fixtures; calls that change the server are recorded in `calls`. */
export class FakeBackend implements Backend {
  readonly baseUrl = "http://fake.test:8787";
  who: Whoami = { name: "alice", role: "operator" };
  agents: Agent[] = [];
  jobs: JobWithSteps[] = [];
  fleet: FleetView = fleetView();
  audit: AuditEntry[] = [];
  logs = new Map<string, LogLine[]>();
  calls: { method: string; args: unknown[] }[] = [];
  eventFeeds: FakeFeed[] = [];
  logFeeds = new Map<string, FakeFeed>();

  async whoami() {
    return this.who;
  }
  async listAgents() {
    return this.agents;
  }
  async getAgent(id: string) {
    const a = this.agents.find((x) => x.id === id);
    if (!a) throw new Error(`no agent ${id}`);
    return a;
  }
  async drainAgent(id: string, reason: string) {
    this.calls.push({ method: "drainAgent", args: [id, reason] });
  }
  async listJobs(q: { state?: JobState; limit: number }) {
    // At most `limit`, as the API answers: a console that trusted one list to be whole would miss the rest.
    return this.jobs.filter((j) => !q.state || j.state === q.state).slice(0, q.limit);
  }
  /** Pages over `jobs` in their order; the cursor is the index of the next one. */
  async listJobPage(q: { state?: JobState; limit: number; cursor?: string }) {
    const all = this.jobs.filter((j) => !q.state || j.state === q.state);
    const from = q.cursor ? Number(q.cursor) : 0;
    const items = all.slice(from, from + q.limit);
    return { items, nextCursor: from + q.limit < all.length ? String(from + q.limit) : null };
  }
  async getJob(id: string) {
    const j = this.jobs.find((x) => x.id === id);
    // As the real client's error for a 404: a status and the catalog code.
    if (!j) throw Object.assign(new Error(`no job ${id}`), { status: 404, code: "not_found" });
    return j;
  }
  async cancelJob(id: string, reason: string) {
    this.calls.push({ method: "cancelJob", args: [id, reason] });
    return { ...(await this.getJob(id)), state: "canceling" as const };
  }
  async retryJob(id: string) {
    this.calls.push({ method: "retryJob", args: [id] });
    return { ...(await this.getJob(id)), id: `${id}-retry` };
  }
  async submitJob(spec: unknown) {
    this.calls.push({ method: "submitJob", args: [spec] });
    return job({ id: "job_new", name: "new" }, "queued");
  }
  async getFleet() {
    return this.fleet;
  }
  async setFleet(body: FleetUpdateBody) {
    this.calls.push({ method: "setFleet", args: [body] });
    if (body.mode === "manual")
      this.fleet = { ...this.fleet, mode: "manual", replicas: body.replicas, desired: body.replicas };
    return this.fleet;
  }
  /** Pages newest first, as the API does; the cursor is the seq below which the next page starts. */
  async listAudit(q: { limit: number; cursor?: string }) {
    const below = q.cursor ? Number(q.cursor) : Number.POSITIVE_INFINITY;
    const all = [...this.audit].sort((a, b) => b.seq - a.seq).filter((e) => e.seq < below);
    const items = all.slice(0, q.limit);
    const last = items.at(-1);
    return { items, nextCursor: items.length === q.limit && last ? String(last.seq) : null };
  }
  history: { at: string; finished: number; succeeded: number; queued: number }[] = [];
  async jobHistory() {
    return this.history;
  }
  countsAsked = 0;
  async jobCounts() {
    this.countsAsked++;
    const states: Record<string, number> = {};
    const queued: Record<string, number> = {};
    for (const j of this.jobs) {
      states[j.state] = (states[j.state] ?? 0) + 1;
      if (j.state === "queued") queued[j.queue] = (queued[j.queue] ?? 0) + 1;
    }
    return { states, queued };
  }
  verifications = 0;
  async verifyAudit() {
    this.verifications++;
    return { ok: true, checked: this.audit.length };
  }
  events(_topics: readonly string[], handlers: FeedHandlers) {
    const feed = new FakeFeed(handlers);
    this.eventFeeds.push(feed);
    feed.state({ kind: "live" });
    return feed;
  }
  jobLog(jobId: string, handlers: FeedHandlers) {
    const feed = new FakeFeed(handlers);
    this.logFeeds.set(jobId, feed);
    feed.state({ kind: "live" });
    for (const line of this.logs.get(jobId) ?? []) feed.emit("line", line, line.seq);
    return feed;
  }
}

export function logLines(texts: string[], step = 0, from = 1): LogLine[] {
  return texts.map((text, i) => ({ seq: from + i, step, stream: "stdout", ts: iso(T0 + i * 1000), text }));
}
