import {
  type Agent,
  AgentResources,
  type AuditEntry,
  AuditOutcome,
  type FleetSettings,
  type Job,
  JobSpec,
  JobState,
  Labels,
  type LogLine,
  LogStream,
  Role,
  SandboxKind,
  type Step,
  StepState,
  type TokenInfo,
  TokenScope,
} from "@skiff/protocol";

// Rows come back from the database we wrote them to, but a schema drift or a hand edit must surface
// as an error here, not as a wrong type deep in the API: enums and JSON columns are parsed.

type Row = Record<string, unknown>;

export function iso(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "string") return new Date(v).toISOString();
  throw new Error(`expected a timestamp, got ${typeof v}`);
}
export function isoOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : iso(v);
}
function num(v: unknown): number {
  const n = typeof v === "bigint" ? Number(v) : Number(v);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got ${String(v)}`);
  return n;
}
function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}
function str(v: unknown): string {
  if (typeof v !== "string") throw new Error(`expected a string, got ${typeof v}`);
  return v;
}
function strOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : str(v);
}

/** A job without its spec: what the lease paths (events, finish) read and answer with. */
export type JobHead = Omit<Job, "spec">;

/** The columns of a `JobHead`, for statements that need no spec (parsing it is most of a row's cost). */
export const JOB_HEAD_COLUMNS = `id, name, queue, state, attempt, max_attempts, epoch, agent_id, exit_code, error,
  cancel_reason, created_by, created_at, assigned_at, started_at, finished_at, log_bytes, log_truncated, retry_of`;

export function toJobHead(r: Row): JobHead {
  return {
    id: str(r.id),
    name: str(r.name),
    queue: str(r.queue),
    state: JobState.parse(r.state),
    attempt: num(r.attempt),
    maxAttempts: num(r.max_attempts),
    epoch: num(r.epoch),
    agentId: strOrNull(r.agent_id),
    exitCode: numOrNull(r.exit_code),
    error: strOrNull(r.error),
    cancelReason: strOrNull(r.cancel_reason),
    createdBy: str(r.created_by),
    createdAt: iso(r.created_at),
    assignedAt: isoOrNull(r.assigned_at),
    startedAt: isoOrNull(r.started_at),
    finishedAt: isoOrNull(r.finished_at),
    logBytes: num(r.log_bytes),
    logTruncated: r.log_truncated === true,
    retryOf: strOrNull(r.retry_of),
  };
}

export function toJob(r: Row): Job {
  const { id, name, queue, state, ...rest } = toJobHead(r);
  // Key order as in the Job schema, so a job reads the same in every response.
  return { id, name, queue, state, spec: JobSpec.parse(r.spec), ...rest };
}

export function toStep(r: Row): Step {
  return {
    index: num(r.idx),
    name: str(r.name),
    state: StepState.parse(r.state),
    exitCode: numOrNull(r.exit_code),
    startedAt: isoOrNull(r.started_at),
    finishedAt: isoOrNull(r.finished_at),
  };
}

export function toLogLine(r: Row): LogLine {
  return {
    seq: num(r.seq),
    step: numOrNull(r.step),
    stream: LogStream.parse(r.stream),
    ts: iso(r.ts),
    text: str(r.text),
  };
}

export function toAgent(r: Row, now = Date.now()): Agent {
  const last = iso(r.last_heartbeat_at);
  return {
    id: str(r.id),
    name: str(r.name),
    version: str(r.version),
    status: r.status === "offline" ? "offline" : "online",
    activity:
      r.activity === "busy" || r.activity === "draining" || r.activity === "degraded" ? r.activity : "idle",
    slots: num(r.slots),
    labels: Labels.parse(r.labels),
    queues: Array.isArray(r.queues) ? r.queues.map(str) : [],
    sandbox: SandboxKind.parse(r.sandbox),
    unsafe: r.sandbox === "none",
    resources: AgentResources.parse(r.resources),
    runningJobs: Array.isArray(r.running_jobs) ? r.running_jobs.map(str) : [],
    drainRequested: r.drain_requested === true,
    registeredAt: iso(r.registered_at),
    lastHeartbeatAt: last,
    heartbeatAgeMs: Math.max(0, now - Date.parse(last)),
  };
}

export function toToken(r: Row): TokenInfo {
  return {
    id: str(r.id),
    name: str(r.name),
    role: Role.parse(r.role),
    scope: scopeOf(r.scope),
    createdAt: iso(r.created_at),
    createdBy: str(r.created_by),
    lastUsedAt: isoOrNull(r.last_used_at),
    revokedAt: isoOrNull(r.revoked_at),
  };
}

/** A token's stored scope; null for a token that may serve any queue. */
export function scopeOf(v: unknown): TokenScope | null {
  return v === null || v === undefined ? null : TokenScope.parse(v);
}

export function toFleet(r: Row): FleetSettings {
  return {
    mode: r.mode === "auto" ? "auto" : "manual",
    replicas: num(r.replicas),
    min: num(r.min),
    max: num(r.max),
    warm: num(r.warm),
    leaderEpoch: num(r.leader_epoch),
    updatedAt: iso(r.updated_at),
    updatedBy: str(r.updated_by),
  };
}

export function toAudit(r: Row): AuditEntry {
  return {
    seq: num(r.seq),
    at: iso(r.at),
    actor: str(r.actor),
    role: str(r.role),
    action: str(r.action),
    target: str(r.target),
    outcome: AuditOutcome.parse(r.outcome),
    requestId: strOrNull(r.request_id),
    sourceIp: strOrNull(r.source_ip),
    details: (r.details ?? {}) as Record<string, unknown>,
    prevHash: str(r.prev_hash),
    hash: str(r.hash),
  };
}
