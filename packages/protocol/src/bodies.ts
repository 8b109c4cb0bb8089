import { z } from "zod";
import { repairText } from "./jobspec.ts";
import { AgentActivity, AgentResources, Labels, Outcome, Role, SandboxKind, TokenScope } from "./model.ts";

const Id = z.string().min(1).max(100);
const Epoch = z.number().int().nonnegative();
const Reason = z.string().min(1, "a reason is required").max(1000);

// Operator-facing bodies.
export const JobCancelBody = z.strictObject({ reason: Reason });
export type JobCancelBody = z.infer<typeof JobCancelBody>;

export const AgentDrainBody = z.strictObject({ reason: Reason });
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
  });
export type TokenCreateBody = z.infer<typeof TokenCreateBody>;

// Agent protocol bodies.
export const AgentRegisterBody = z.strictObject({
  name: z.string().min(1).max(200),
  version: z.string().min(1).max(50),
  slots: z.number().int().min(1).max(256),
  labels: Labels.default({}),
  sandbox: SandboxKind,
  resources: AgentResources.default({}),
});
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

export const AgentHeartbeatBody = z.strictObject({
  agentId: Id,
  status: AgentActivity,
  running: z.array(RunningLease).max(1024).default([]),
  resources: AgentResources.default({}),
});
export type AgentHeartbeatBody = z.infer<typeof AgentHeartbeatBody>;

export const AgentCommand = z.discriminatedUnion("type", [
  z.object({ type: z.literal("drain"), reason: z.string() }),
  z.object({ type: z.literal("cancel"), jobId: z.string(), epoch: z.number().int(), reason: z.string() }),
]);
export type AgentCommand = z.infer<typeof AgentCommand>;

export const AgentHeartbeatResponse = z.object({ commands: z.array(AgentCommand) });
export type AgentHeartbeatResponse = z.infer<typeof AgentHeartbeatResponse>;

export const AgentClaimBody = z.strictObject({
  agentId: Id,
  max: z.number().int().min(1).max(256),
  waitMs: z.number().int().min(0).max(60_000).default(0),
});
export type AgentClaimBody = z.infer<typeof AgentClaimBody>;

const LogChunk = z.strictObject({
  type: z.literal("log"),
  seq: z.number().int().nonnegative(),
  step: z.number().int().nonnegative().nullable(),
  stream: z.enum(["stdout", "stderr", "system"]),
  ts: z.string().max(40).optional(),
  // Repaired rather than refused: it is whatever a job printed, and a worker from before the
  // repair moved into the worker must not lose a whole batch to one NUL.
  text: z
    .string()
    .max(1024 * 1024)
    .transform(repairText),
});
const StepStarted = z.strictObject({
  type: z.literal("step.started"),
  step: z.number().int().nonnegative(),
  ts: z.string().max(40).optional(),
});
const StepFinished = z.strictObject({
  type: z.literal("step.finished"),
  step: z.number().int().nonnegative(),
  outcome: z.enum(["succeeded", "failed", "canceled", "timed_out"]),
  exitCode: z.number().int().nullable(),
  ts: z.string().max(40).optional(),
});
export const JobEvent = z.discriminatedUnion("type", [LogChunk, StepStarted, StepFinished]);
export type JobEvent = z.infer<typeof JobEvent>;
export type LogChunk = z.infer<typeof LogChunk>;

export const AgentEventsBody = z.strictObject({
  agentId: Id,
  epoch: Epoch,
  events: z.array(JobEvent).max(10_000),
});
export type AgentEventsBody = z.infer<typeof AgentEventsBody>;

export const AgentFinishBody = z.strictObject({
  agentId: Id,
  epoch: Epoch,
  outcome: Outcome,
  exitCode: z.number().int().nullable(),
  error: z.string().max(10_000).optional(),
});
export type AgentFinishBody = z.infer<typeof AgentFinishBody>;

export const AgentDeregisterBody = z.strictObject({ agentId: Id });
export type AgentDeregisterBody = z.infer<typeof AgentDeregisterBody>;
