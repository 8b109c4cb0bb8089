import { z } from "zod";
import { JobSpec } from "./jobspec.ts";

export const JOB_STATES = [
  "queued",
  "assigned",
  "running",
  "canceling",
  "succeeded",
  "failed",
  "canceled",
  "timed_out",
] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

export const FINAL_JOB_STATES: readonly JobState[] = ["succeeded", "failed", "canceled", "timed_out"];
export function isFinal(state: JobState): boolean {
  return FINAL_JOB_STATES.includes(state);
}

export const Outcome = z.enum(["succeeded", "failed", "canceled", "timed_out"]);
export type Outcome = z.infer<typeof Outcome>;

export const StepState = z.enum([
  "pending",
  "running",
  "succeeded",
  "failed",
  "skipped",
  "canceled",
  "timed_out",
]);
export type StepState = z.infer<typeof StepState>;

export const Step = z.object({
  index: z.number().int(),
  name: z.string(),
  state: StepState,
  exitCode: z.number().int().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type Step = z.infer<typeof Step>;

export const Job = z.object({
  id: z.string(),
  name: z.string(),
  queue: z.string(),
  state: JobState,
  spec: JobSpec,
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  epoch: z.number().int(),
  agentId: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  error: z.string().nullable(),
  cancelReason: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  assignedAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  logBytes: z.number().int(),
  /** Some of the job's output was left out to keep it within the log cap (a marker line says where). */
  logTruncated: z.boolean(),
  retryOf: z.string().nullable(),
});
export type Job = z.infer<typeof Job>;

export const JobWithSteps = Job.extend({ steps: z.array(Step) });
export type JobWithSteps = z.infer<typeof JobWithSteps>;

export const LogStream = z.enum(["stdout", "stderr", "system"]);
export type LogStream = z.infer<typeof LogStream>;

export const LogLine = z.object({
  seq: z.number().int().nonnegative(),
  step: z.number().int().nullable(),
  stream: LogStream,
  ts: z.string(),
  text: z.string(),
});
export type LogLine = z.infer<typeof LogLine>;

/**
 * A job's log seqs are split by attempt: attempt N's lines are numbered from `attemptSeqBase(N) + 1`.
 * The API keeps a job's lines by (job, seq) and ignores a seq it already has, so an attempt that
 * numbered from 1 again after a requeue would have its first lines dropped in favour of the dead
 * attempt's. A billion lines per attempt is far past the log cap, and 100 attempts (the JobSpec
 * maximum) stay well within a safe integer. The seq `attemptSeqBase(N + 1)` itself is no worker's:
 * the API writes there the line that says how attempt N ended when it took the job back.
 */
export const ATTEMPT_SEQ_SPAN = 1_000_000_000;

export function attemptSeqBase(attempt: number): number {
  return Math.max(0, attempt - 1) * ATTEMPT_SEQ_SPAN;
}

/** The attempt a log line belongs to; the line the API writes between attempts closes the one before. */
export function attemptOfSeq(seq: number): number {
  return Math.max(1, Math.ceil(seq / ATTEMPT_SEQ_SPAN));
}

export const SANDBOX_KINDS = ["bwrap", "docker", "none"] as const;
export const SandboxKind = z.enum(SANDBOX_KINDS);
export type SandboxKind = z.infer<typeof SandboxKind>;

export const AgentStatus = z.enum(["online", "offline"]);
export type AgentStatus = z.infer<typeof AgentStatus>;
export const AgentActivity = z.enum(["idle", "busy", "draining", "degraded"]);
export type AgentActivity = z.infer<typeof AgentActivity>;

export const AgentResources = z.strictObject({
  cpuPercent: z.number().min(0).max(100_000).optional(),
  memoryUsedMb: z.number().min(0).optional(),
  memoryTotalMb: z.number().min(0).optional(),
  load1: z.number().min(0).optional(),
});
export type AgentResources = z.infer<typeof AgentResources>;

export const Labels = z.record(
  z
    .string()
    .min(1)
    .max(63)
    .regex(/^[A-Za-z0-9._/-]+$/, "label key"),
  z.string().max(200),
);
export type Labels = z.infer<typeof Labels>;

export const Agent = z.object({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  status: AgentStatus,
  activity: AgentActivity,
  slots: z.number().int(),
  labels: Labels,
  queues: z.array(z.string()),
  sandbox: SandboxKind,
  unsafe: z.boolean(),
  resources: AgentResources,
  runningJobs: z.array(z.string()),
  drainRequested: z.boolean(),
  registeredAt: z.string(),
  lastHeartbeatAt: z.string(),
  heartbeatAgeMs: z.number(),
});
export type Agent = z.infer<typeof Agent>;

/** The queues an agent serves, from its `queue` label (comma separated), default `default`. */
export function queuesOf(labels: Labels): string[] {
  const raw = labels.queue ?? labels.queues ?? "default";
  const queues = raw
    .split(",")
    .map((q) => q.trim())
    .filter((q) => q !== "");
  return queues.length > 0 ? [...new Set(queues)] : ["default"];
}

export const ROLES = ["admin", "operator", "viewer", "agent"] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** admin ⊃ operator ⊃ viewer; agent stands apart. */
export function roleAllows(have: Role, need: Role): boolean {
  if (need === "agent" || have === "agent") return have === need;
  const rank: Record<Exclude<Role, "agent">, number> = { viewer: 1, operator: 2, admin: 3 };
  return rank[have] >= rank[need];
}

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * What an agent token may serve: agents registered with it must take jobs only from these queues
 * and carry exactly these label values. The `queue` label is bound by `queues`, never by `labels`.
 */
export const TokenScope = z.strictObject({
  queues: z
    .array(z.string().min(1).max(100).regex(QUEUE_NAME, "a queue name: letters, digits, '.', '_' or '-'"))
    .min(1, "name at least one queue")
    .max(100)
    .refine((qs) => new Set(qs).size === qs.length, "each queue once"),
  labels: Labels.superRefine((labels, ctx) => {
    for (const key of ["queue", "queues"]) {
      if (key in labels)
        ctx.addIssue({ code: "custom", path: [key], message: "bind queues with scope.queues" });
    }
  }).optional(),
});
export type TokenScope = z.infer<typeof TokenScope>;

export const TokenInfo = z.object({
  id: z.string(),
  name: z.string(),
  role: Role,
  /** Only agent tokens have one; null means the token may serve any queue and label. */
  scope: TokenScope.nullable(),
  createdAt: z.string(),
  createdBy: z.string(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;

export const FleetMode = z.enum(["manual", "auto"]);
export type FleetMode = z.infer<typeof FleetMode>;

export const FleetSettings = z.object({
  mode: FleetMode,
  replicas: z.number().int().min(0),
  min: z.number().int().min(0),
  max: z.number().int().min(0),
  warm: z.number().int().min(0),
  leaderEpoch: z.number().int(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});
export type FleetSettings = z.infer<typeof FleetSettings>;

export const AuditOutcome = z.enum(["ok", "denied", "error"]);
export type AuditOutcome = z.infer<typeof AuditOutcome>;

export const AuditEntry = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  actor: z.string(),
  role: z.string(),
  action: z.string(),
  target: z.string(),
  outcome: AuditOutcome,
  requestId: z.string().nullable(),
  sourceIp: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditVerifyResult = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  firstBrokenSeq: z.number().int().optional(),
  reason: z.string().optional(),
  /** Whether seals were checked (the verifier holds the audit key). */
  sealed: z.boolean().optional(),
  /** Leading rows written before sealing was on: only hash-chained. */
  unsealed: z.number().int().optional(),
  /** Checkpoints checked against the log. */
  checkpoints: z.number().int().optional(),
});

/** A signed statement of the audit chain's head, kept outside the database. */
export const AuditCheckpoint = z.strictObject({
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  hash: z.string().regex(/^[0-9a-f]{64}$/, "expected a 64-character hex hash"),
  at: z.string().max(64),
  sig: z.string().regex(/^[0-9a-f]{64}$/, "expected a 64-character hex signature"),
});
export type AuditCheckpoint = z.infer<typeof AuditCheckpoint>;
export type AuditVerifyResult = z.infer<typeof AuditVerifyResult>;
