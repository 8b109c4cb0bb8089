import { z } from "zod";
import { refuseUnstorable, repairText } from "./jobspec.ts";
import {
  AgentActivity,
  AgentResources,
  AuditCheckpoint,
  Labels,
  Outcome,
  Role,
  SandboxKind,
  TokenScope,
} from "./model.ts";

const Id = z.string().min(1).max(100);
// Epochs, step indexes and exit codes live in PostgreSQL integer columns.
const Epoch = z.int32().nonnegative();
const StepIndex = z.int32().nonnegative();
const ExitCode = z.int32();

const MIN_TIME = Date.parse("0001-01-01T00:00:00Z");
const MAX_TIME = Date.parse("9999-12-31T23:59:59.999Z");
/** An ISO 8601 time that PostgreSQL's timestamptz takes: in UTC, from year 1 to year 9999. */
export const Timestamp = z.iso.datetime({ offset: true }).refine((s) => {
  const t = Date.parse(s);
  return Number.isNaN(t) || (t >= MIN_TIME && t <= MAX_TIME); // NaN: the format check says so
}, "a time from year 1 to year 9999");

// Every request body ends with `.superRefine(refuseUnstorable)`: no string anywhere in it may hold
// text PostgreSQL cannot store (NUL, a lone surrogate), and the issue names the field.
const Reason = z.string().min(1, "a reason is required").max(1000);

// Operator-facing bodies.
export const JobCancelBody = z.strictObject({ reason: Reason }).superRefine(refuseUnstorable);
export type JobCancelBody = z.infer<typeof JobCancelBody>;

export const AgentDrainBody = z.strictObject({ reason: Reason }).superRefine(refuseUnstorable);
export type AgentDrainBody = z.infer<typeof AgentDrainBody>;

export const FleetUpdateBody = z.discriminatedUnion("mode", [
  z.strictObject({ mode: z.literal("manual"), replicas: z.number().int().min(0).max(10_000) }),
  z
    .strictObject({
      mode: z.literal("auto"),
      min: z.number().int().min(0).max(10_000),
      max: z.number().int().min(0).max(10_000),
      warm: z.number().int().min(0).max(10_000).default(0),
    })
    .refine((b) => b.min <= b.max, { path: ["min"], message: "min must not exceed max" }),
]);
export type FleetUpdateBody = z.infer<typeof FleetUpdateBody>;

export const TokenCreateBody = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(100)
      .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]*$/, "letters, digits, '.', '_', '@' or '-'"),
    role: Role,
    scope: TokenScope.optional(),
  })
  .refine((b) => b.scope === undefined || b.role === "agent", {
    path: ["scope"],
    message: "only agent tokens take a scope",
  })
  .superRefine(refuseUnstorable);
export type TokenCreateBody = z.infer<typeof TokenCreateBody>;

// Agent protocol bodies.
export const AgentRegisterBody = z
  .strictObject({
    name: z.string().min(1).max(200),
    version: z.string().min(1).max(50),
    slots: z.number().int().min(1).max(256),
    labels: Labels.default({}),
    sandbox: SandboxKind,
    resources: AgentResources.default({}),
  })
  .superRefine(refuseUnstorable);
export type AgentRegisterBody = z.infer<typeof AgentRegisterBody>;

export const AgentRegisterResponse = z.object({
  agentId: z.string(),
  heartbeatIntervalMs: z.number().int(),
  offlineAfterMs: z.number().int(),
  /** This agent's own credential for every later call; it dies when the agent deregisters or goes offline. */
  agentToken: z.string().optional(),
});
export type AgentRegisterResponse = z.infer<typeof AgentRegisterResponse>;

export const RunningLease = z.strictObject({ jobId: Id, epoch: Epoch });
export type RunningLease = z.infer<typeof RunningLease>;

export const AgentHeartbeatBody = z
  .strictObject({
    agentId: Id,
    status: AgentActivity,
    running: z.array(RunningLease).max(1024).default([]),
    resources: AgentResources.default({}),
  })
  .superRefine(refuseUnstorable);
export type AgentHeartbeatBody = z.infer<typeof AgentHeartbeatBody>;

export const AgentCommand = z.discriminatedUnion("type", [
  z.object({ type: z.literal("drain"), reason: z.string() }),
  z.object({ type: z.literal("cancel"), jobId: z.string(), epoch: z.number().int(), reason: z.string() }),
]);
export type AgentCommand = z.infer<typeof AgentCommand>;

export const AgentHeartbeatResponse = z.object({ commands: z.array(AgentCommand) });
export type AgentHeartbeatResponse = z.infer<typeof AgentHeartbeatResponse>;

export const AgentClaimBody = z
  .strictObject({
    agentId: Id,
    max: z.number().int().min(1).max(256),
    waitMs: z.number().int().min(0).max(60_000).default(0),
  })
  .superRefine(refuseUnstorable);
export type AgentClaimBody = z.infer<typeof AgentClaimBody>;

const LogChunk = z.strictObject({
  type: z.literal("log"),
  seq: z.number().int().nonnegative(),
  step: StepIndex.nullable(),
  stream: z.enum(["stdout", "stderr", "system"]),
  ts: Timestamp.optional(),
  // Repaired rather than refused: it is whatever a job printed, and a worker from before the
  // repair moved into the worker must not lose a whole batch to one NUL.
  text: z
    .string()
    .max(1024 * 1024)
    .transform(repairText),
  /**
   * Set on the worker's truncation marker: how many output lines, and bytes, it left out at this
   * point to keep the job within its log cap. The job's `logTruncated` becomes true.
   */
  omitted: z
    .strictObject({
      lines: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
      bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    })
    .optional(),
});
const StepStarted = z.strictObject({
  type: z.literal("step.started"),
  step: StepIndex,
  ts: Timestamp.optional(),
});
const StepFinished = z.strictObject({
  type: z.literal("step.finished"),
  step: StepIndex,
  outcome: z.enum(["succeeded", "failed", "canceled", "timed_out"]),
  exitCode: ExitCode.nullable(),
  ts: Timestamp.optional(),
});
export const JobEvent = z.discriminatedUnion("type", [LogChunk, StepStarted, StepFinished]);
export type JobEvent = z.infer<typeof JobEvent>;
export type LogChunk = z.infer<typeof LogChunk>;

export const AgentEventsBody = z
  .strictObject({
    agentId: Id,
    epoch: Epoch,
    events: z.array(JobEvent).max(10_000),
  })
  .superRefine(refuseUnstorable);
export type AgentEventsBody = z.infer<typeof AgentEventsBody>;

export const AgentFinishBody = z
  .strictObject({
    agentId: Id,
    epoch: Epoch,
    outcome: Outcome,
    exitCode: ExitCode.nullable(),
    error: z.string().max(10_000).optional(),
  })
  .superRefine(refuseUnstorable);
export type AgentFinishBody = z.infer<typeof AgentFinishBody>;

export const AgentDeregisterBody = z.strictObject({ agentId: Id }).superRefine(refuseUnstorable);
export type AgentDeregisterBody = z.infer<typeof AgentDeregisterBody>;

/** Checkpoints to check the audit log against (`skiff audit verify --checkpoint FILE`). */
export const AuditVerifyBody = z
  .strictObject({ checkpoints: z.array(AuditCheckpoint).max(100_000) })
  .superRefine(refuseUnstorable);
export type AuditVerifyBody = z.infer<typeof AuditVerifyBody>;
