import type {
  Agent,
  AgentResources,
  AuditEntry,
  Job,
  JobEvent,
  JobSpec,
  Labels,
  Role,
  SandboxKind,
  TokenInfo,
  TokenScope,
} from "@skiff/protocol";
import type { Db, Queryable } from "./db.ts";
import { newId } from "./ids.ts";
import * as agents from "./sql/agents.ts";
import {
  type AuditCheckpoint,
  type AuditDraft,
  appendAudit,
  listAudit,
  sealedHead,
  signCheckpoint,
  verifyAudit,
} from "./sql/audit.ts";
import * as control from "./sql/control.ts";
import * as events from "./sql/events.ts";
import { recordEvents, recordJobStates } from "./sql/events.ts";
import * as fleet from "./sql/fleet.ts";
import * as jobs from "./sql/jobs.ts";
import * as lease from "./sql/lease.ts";
import * as tokens from "./sql/tokens.ts";

/** Who did something, as the audit log records it. */
export interface Actor {
  actor: string;
  role: string;
  requestId?: string | null;
  sourceIp?: string | null;
}

/** Everything a change produced: the rows it wrote, including its audit entries, for the bus. */
export interface Audited<T> {
  value: T;
  audit: AuditEntry[];
}

/**
 * The one interface to Skiff's state. Every mutating operation that an actor causes writes its audit
 * entry in the same transaction as the change.
 */
export class Store {
  constructor(
    readonly db: Db,
    /** Seals audit rows and signs checkpoints; the database never holds it. Null: rows go unsealed. */
    readonly auditKey: Buffer | null = null,
  ) {}

  get kind(): Db["kind"] {
    return this.db.kind;
  }

  private readonly writeListeners = new Set<() => void>();

  /**
   * Calls `fn` after each committed change of this process that recorded events: the API's relay
   * numbers and sends them at once. A process with no listener (the controller) tells the API
   * replicas with a NOTIFY instead. Writers do not NOTIFY in their own transactions: PostgreSQL
   * serialises the commits of transactions that do, which cost the claim path a third of its speed.
   */
  onWrote(fn: () => void): () => void {
    this.writeListeners.add(fn);
    return () => this.writeListeners.delete(fn);
  }

  private wrote<T>(result: T): T {
    if (this.writeListeners.size > 0) for (const fn of this.writeListeners) fn();
    else void this.db.query("select pg_notify('skiff_events', '')").catch(() => {});
    return result;
  }

  private async audited<T>(
    fn: (
      q: Queryable,
      audit: (d: Omit<AuditDraft, keyof Actor | "outcome"> & { outcome?: AuditDraft["outcome"] }) => void,
    ) => Promise<T>,
    who: Actor,
  ): Promise<Audited<T>> {
    return this.db
      .tx(async (q) => {
        const drafts: AuditDraft[] = [];
        const value = await fn(q, (d) =>
          drafts.push({
            ...d,
            outcome: d.outcome ?? "ok",
            actor: who.actor,
            role: who.role,
            requestId: who.requestId ?? null,
            sourceIp: who.sourceIp ?? null,
          }),
        );
        const audit: AuditEntry[] = [];
        for (const d of drafts) audit.push(await appendAudit(q, d, this.auditKey));
        return { value, audit };
      })
      .then((r) => this.wrote(r));
  }

  // Jobs ---------------------------------------------------------------------------------------

  submitJob(spec: JobSpec, who: Actor): Promise<Audited<Job>> {
    return this.audited(async (q, audit) => {
      const job = await jobs.insertJob(q, { id: newId("job"), spec, createdBy: who.actor });
      await created(q, job);
      audit({ action: "job.submit", target: job.id, details: { name: job.name, queue: job.queue } });
      return job;
    }, who);
  }

  getJob(id: string) {
    return jobs.getJobWithSteps(this.db, id);
  }

  listJobs(filter: jobs.JobFilter) {
    return jobs.listJobs(this.db, filter);
  }

  countJobsByState() {
    return jobs.countJobsByState(this.db);
  }

  countQueuedByQueue() {
    return jobs.countQueuedByQueue(this.db);
  }

  countQueuedOn(queues: readonly string[]) {
    return jobs.countQueuedOn(this.db, queues);
  }

  jobHistory(bucketSeconds: number, buckets: number, now?: number) {
    return jobs.jobHistory(this.db, bucketSeconds, buckets, now);
  }

  /** The highest log seq stored for a job (0 when none). */
  async lastLogSeq(jobId: string): Promise<number> {
    const res = await this.db.query<{ seq: string | number | null }>(
      "select max(seq) as seq from job_logs where job_id = $1",
      [jobId],
    );
    return Number(res.rows[0]?.seq ?? 0);
  }

  listLogs(jobId: string, afterSeq: number, limit: number) {
    return control.listLogs(this.db, { jobId, afterSeq, limit });
  }

  cancelJob(jobId: string, reason: string, who: Actor): Promise<Audited<control.CancelResult>> {
    return this.audited(async (q, audit) => {
      const res = await control.cancelJob(q, { jobId, reason });
      if (res.ok && res.changed) {
        await recordJobStates(q, [{ id: jobId, reason }]);
        audit({ action: "job.cancel", target: jobId, details: { reason, state: res.job.state } });
      }
      return res;
    }, who);
  }

  /** Starts a new job from a finished one's spec; the new job records which one it retries. */
  retryJob(
    jobId: string,
    who: Actor,
  ): Promise<
    Audited<
      { ok: true; job: Job } | { ok: false; reason: "not_found" | "invalid_transition"; job: Job | null }
    >
  > {
    return this.audited(async (q, audit) => {
      const old = await jobs.getJob(q, jobId);
      if (!old) return { ok: false as const, reason: "not_found" as const, job: null };
      if (!["succeeded", "failed", "canceled", "timed_out"].includes(old.state)) {
        return { ok: false as const, reason: "invalid_transition" as const, job: old };
      }
      const job = await jobs.insertJob(q, {
        id: newId("job"),
        spec: old.spec,
        createdBy: who.actor,
        retryOf: old.id,
      });
      await created(q, job);
      audit({ action: "job.retry", target: old.id, details: { newJobId: job.id } });
      return { ok: true as const, job };
    }, who);
  }

  // Agent protocol -----------------------------------------------------------------------------

  /** One statement on the pool (no explicit transaction), committed without waiting for the WAL. */
  async claimJobs(agentId: string, queues: string[], max: number) {
    const claimed = await jobs.claimJobs(this.db, { agentId, queues, max });
    return claimed.length > 0 ? this.wrote(claimed) : claimed;
  }

  appendEvents(input: {
    jobId: string;
    agentId: string;
    epoch: number;
    events: JobEvent[];
    logCapBytes: number;
  }) {
    return this.db
      .tx(async (q) => {
        const res = await lease.appendEvents(q, input);
        if (res.ok && res.startedNow) await recordJobStates(q, [{ id: input.jobId }]);
        return res;
      })
      .then((res) => (res.ok && res.startedNow ? this.wrote(res) : res));
  }

  /** Final outcomes of many jobs in one statement and one durable commit (the API group-commits finishes). */
  async finishJobs(inputs: lease.FinishInput[]) {
    return this.wrote(await lease.finishJobs(this.db, inputs));
  }

  async finishJob(input: lease.FinishInput) {
    const [result] = await this.finishJobs([input]);
    if (!result) throw new Error("finishJobs returned no result");
    return result;
  }

  registerAgent(
    input: {
      name: string;
      version: string;
      slots: number;
      labels: Labels;
      queues: string[];
      sandbox: SandboxKind;
      resources: AgentResources;
      tokenId: string | null;
      /** SHA-256 of the agent's own credential, or null for an agent that has none. */
      credentialHash?: string | null;
    },
    who: Actor,
  ): Promise<Audited<Agent>> {
    return this.audited(async (q, audit) => {
      const agent = await agents.insertAgent(q, {
        ...input,
        credentialHash: input.credentialHash ?? null,
        id: newId("agt"),
      });
      await recordEvents(q, [
        {
          name: "agent.registered",
          payload: { agentId: agent.id, name: agent.name, sandbox: agent.sandbox, agent },
        },
        { name: "agent.status", payload: { agentId: agent.id, status: "online", activity: "idle" } },
      ]);
      audit({
        action: "agent.register",
        target: agent.id,
        details: {
          name: agent.name,
          sandbox: agent.sandbox,
          slots: agent.slots,
          unsafe: agent.unsafe,
          queues: agent.queues,
        },
      });
      return agent;
    }, who);
  }

  /** Records heartbeats, several agents' in one transaction; see `recordHeartbeats`. */
  /** One write statement and one read, on the pool (no explicit transaction; see recordHeartbeats). */
  async heartbeats(inputs: agents.HeartbeatInput[]) {
    return this.wrote(await agents.recordHeartbeats(this.db, inputs));
  }

  async heartbeat(input: agents.HeartbeatInput) {
    const [result] = await this.heartbeats([input]);
    return result ?? null;
  }

  getAgent(id: string) {
    return agents.getAgent(this.db, id);
  }

  listAgents(opts: { includeOffline?: boolean } = {}) {
    return agents.listAgents(this.db, opts);
  }

  getAgentLease(id: string) {
    return agents.getAgentLease(this.db, id);
  }

  countAgents() {
    return agents.countAgents(this.db);
  }

  drainAgent(agentId: string, reason: string, who: Actor): Promise<Audited<Agent | null>> {
    return this.audited(async (q, audit) => {
      const agent = await agents.requestDrain(q, agentId, reason);
      if (agent) {
        await recordEvents(q, [
          {
            name: "agent.status",
            // An offline agent is marked to drain should it come back; what it does now is unchanged.
            payload: {
              agentId,
              status: agent.status,
              activity: agent.status === "online" ? "draining" : agent.activity,
              reason,
            },
          },
        ]);
        audit({ action: "agent.drain", target: agentId, details: { reason, name: agent.name } });
      }
      return agent;
    }, who);
  }

  /** A clean exit: the agent goes offline and whatever it still held goes back to the queue. */
  deregisterAgent(
    agentId: string,
    who: Actor,
  ): Promise<Audited<{ found: boolean; requeue: control.RequeueOutcome }>> {
    return this.audited(async (q, audit) => {
      const found = (await agents.getAgent(q, agentId)) !== null;
      if (!found) return { found, requeue: { requeued: [], failed: [], canceled: [] } };
      await agents.markAgentOffline(q, agentId);
      const requeue = await control.requeueJobsOfAgents(q, [agentId], "its worker deregistered");
      await recordEvents(q, [
        {
          name: "agent.status",
          payload: { agentId, status: "offline", activity: "idle", reason: "deregistered" },
        },
      ]);
      await recordJobStates(q, requeuedStates(requeue, "agent deregistered"));
      audit({ action: "agent.deregister", target: agentId, details: { requeued: requeue.requeued.length } });
      return { found, requeue };
    }, who);
  }

  /**
   * One pass of the reaper: silent agents go offline and lose their jobs, overdue jobs time out,
   * expired logs go. Idempotent; replicas running it together each take a disjoint share.
   */
  reap(opts: {
    offlineAfterMs: number;
    timeoutGraceSeconds: number;
    logRetentionSeconds: number;
    /** Offline agents holding no job are forgotten this long after their last heartbeat. */
    agentRetentionSeconds?: number;
  }) {
    return this.audited(
      async (q, audit) => {
        const offline = await agents.markSilentAgentsOffline(q, opts.offlineAfterMs);
        const requeue = await control.requeueJobsOfAgents(
          q,
          offline,
          `its worker went silent for over ${opts.offlineAfterMs / 1000} s`,
        );
        for (const id of offline) {
          audit({ action: "agent.offline", target: id, details: { silentForMs: opts.offlineAfterMs } });
        }
        const timedOut = await control.timeOutOverdueJobs(q, opts.timeoutGraceSeconds);
        await recordEvents(
          q,
          offline.map((agentId) => ({
            name: "agent.status" as const,
            payload: {
              agentId,
              status: "offline" as const,
              activity: "idle" as const,
              reason: `silent for ${opts.offlineAfterMs} ms`,
            },
          })),
        );
        await recordJobStates(q, [
          ...requeuedStates(requeue, "agent lost"),
          ...timedOut.map((j) => ({ id: j.id, reason: "timeout" })),
        ]);
        const logsDeleted = await control.deleteExpiredLogs(q, opts.logRetentionSeconds);
        const agentsPruned =
          opts.agentRetentionSeconds === undefined
            ? 0
            : await agents.pruneOfflineAgents(q, opts.agentRetentionSeconds);
        return { offline, requeue, timedOut, logsDeleted, agentsPruned };
      },
      { actor: "reaper", role: "system" },
    );
  }

  // Tokens -------------------------------------------------------------------------------------

  /** An agent token may carry a scope (the queues and labels its agents may serve); others may not. */
  createToken(
    input: { name: string; role: Role; hash: string; scope?: TokenScope | null },
    who: Actor,
  ): Promise<Audited<TokenInfo>> {
    return this.audited(async (q, audit) => {
      const token = await tokens.insertToken(q, { ...input, id: newId("tok"), createdBy: who.actor });
      audit({
        action: "token.create",
        target: token.id,
        details: { name: token.name, role: token.role, ...(token.scope ? { scope: token.scope } : {}) },
      });
      return token;
    }, who);
  }

  findTokenByHash(hash: string) {
    return tokens.findTokenByHash(this.db, hash);
  }

  /** A live token or an online agent's own credential; see `findCredential`. */
  findCredential(hash: string) {
    return tokens.findCredential(this.db, hash);
  }

  touchToken(id: string) {
    return tokens.touchToken(this.db, id);
  }

  listTokens() {
    return tokens.listTokens(this.db);
  }

  revokeToken(id: string, who: Actor): Promise<Audited<TokenInfo | null>> {
    return this.audited(async (q, audit) => {
      const token = await tokens.revokeToken(q, id);
      if (token)
        audit({ action: "token.revoke", target: id, details: { name: token.name, role: token.role } });
      return token;
    }, who);
  }

  hasLiveAdmin() {
    return tokens.hasLiveAdmin(this.db);
  }

  // Fleet --------------------------------------------------------------------------------------

  getFleet() {
    return fleet.getFleetSettings(this.db);
  }

  updateFleet(update: fleet.FleetUpdate, who: Actor) {
    return this.audited(async (q, audit) => {
      const before = await fleet.getFleetSettings(q);
      const after = await fleet.updateFleetSettings(q, update, who.actor);
      await recordEvents(q, [
        { name: "fleet.changed", payload: { ...after, reason: `set by ${who.actor}` } },
      ]);
      audit({
        action: "fleet.update",
        target: "fleet",
        details: { before: settingsOf(before), after: settingsOf(after) },
      });
      return after;
    }, who);
  }

  takeLeadership(holder: string) {
    return this.audited(
      async (q, audit) => {
        const lead = await fleet.takeLeadership(q, holder);
        audit({ action: "controller.leader", target: "controller", details: { holder, epoch: lead.epoch } });
        return lead;
      },
      { actor: holder, role: "system" },
    );
  }

  getLeadership() {
    return fleet.getLeadership(this.db);
  }

  /**
   * The leading controller's count of the workers its scaler runs, and a `fleet.changed` event
   * with it when it changed; nothing when `epoch` no longer leads.
   */
  async reportWorkers(epoch: number, workers: number): Promise<boolean> {
    const changed = await this.db.tx(async (q) => {
      const ok = await fleet.reportWorkers(q, epoch, workers);
      if (ok)
        await recordEvents(q, [{ name: "fleet.changed", payload: { actual: workers, leaderEpoch: epoch } }]);
      return ok;
    });
    return changed ? this.wrote(changed) : changed;
  }

  recordDecision(d: Omit<fleet.FleetDecision, "at">) {
    return fleet.recordDecision(this.db, d);
  }

  /**
   * A controller's decision and its `fleet.scale` audit entry, in one transaction: false (and no
   * entry) when a newer leader's epoch fences it.
   */
  recordScaleDecision(d: Omit<fleet.FleetDecision, "at">, from: number | null, who: Actor) {
    return this.audited(async (q, audit) => {
      const ok = await fleet.recordDecision(q, d);
      if (ok) {
        await recordEvents(q, [
          {
            name: "fleet.changed",
            payload: { desired: d.desired, actual: d.actual, reason: d.reason, leaderEpoch: d.leaderEpoch },
          },
        ]);
        audit({
          action: "fleet.scale",
          target: "fleet",
          details: { from, to: d.desired, reason: d.reason, epoch: d.leaderEpoch },
        });
      }
      return ok;
    }, who);
  }

  recentDecisions(limit = 20) {
    return fleet.recentDecisions(this.db, limit);
  }

  // Events -------------------------------------------------------------------------------------

  /** Numbers committed events; see `numberEvents`. */
  numberEvents() {
    return events.numberEvents(this.db);
  }

  eventsAfter(seq: number, limit: number) {
    return events.eventsAfter(this.db, seq, limit);
  }

  eventBounds() {
    return events.eventBounds(this.db);
  }

  pruneEvents(keepSeconds: number, keepAtLeast?: number) {
    return events.pruneEvents(this.db, keepSeconds, keepAtLeast);
  }

  /** Calls `fn` when events may have been recorded or numbered (by any process). */
  onEvents(fn: () => void) {
    return this.db.listen("skiff_events", fn);
  }

  // Audit --------------------------------------------------------------------------------------

  /** For events with no other change to ride on, such as a denied request. */
  async appendAudit(draft: AuditDraft) {
    return this.wrote(await this.db.tx((q) => appendAudit(q, draft, this.auditKey)));
  }

  listAudit(filter: Parameters<typeof listAudit>[1]) {
    return listAudit(this.db, filter);
  }

  verifyAudit(checkpoints: AuditCheckpoint[] = []) {
    return verifyAudit(this.db, { key: this.auditKey, checkpoints });
  }

  /** A signed checkpoint of the chain's head now, or null without the audit key. */
  async auditCheckpoint(): Promise<AuditCheckpoint | null> {
    if (!this.auditKey) return null;
    const head = await sealedHead(this.db, this.auditKey);
    return signCheckpoint(this.auditKey, { ...head, at: new Date().toISOString() });
  }

  async ping(): Promise<void> {
    await this.db.query("select 1");
  }

  close() {
    return this.db.close();
  }
}

function settingsOf(s: { mode: string; replicas: number; min: number; max: number; warm: number }) {
  return s.mode === "manual"
    ? { mode: s.mode, replicas: s.replicas }
    : { mode: s.mode, min: s.min, max: s.max, warm: s.warm };
}

/** A new job's events: it exists, and its first state. */
async function created(q: Queryable, job: Job): Promise<void> {
  await recordEvents(q, [
    { name: "job.created", payload: { jobId: job.id, name: job.name, queue: job.queue } },
  ]);
  await recordJobStates(q, [{ id: job.id }]);
}

/** The state events of jobs taken back from a lost or departed agent, each saying what became of it. */
function requeuedStates(r: control.RequeueOutcome, cause: string) {
  return [
    ...r.requeued.map((j) => ({ id: j.id, reason: `${cause}; requeued` })),
    ...r.failed.map((j) => ({ id: j.id, reason: `${cause}; out of attempts` })),
    ...r.canceled.map((j) => ({ id: j.id, reason: `${cause} while canceling` })),
  ];
}
