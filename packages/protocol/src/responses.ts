import { z } from "zod";
import { ERROR_CODES, type ErrorCode } from "./errors.ts";
import { EVENT_SCHEMAS, TOPICS } from "./events.ts";
import {
  Agent,
  AuditCheckpoint,
  AuditEntry,
  FleetMode,
  Job,
  JobState,
  LogLine,
  Role,
  TokenInfo,
  TokenScope,
} from "./model.ts";

// The answers of the HTTP API that had no schema of their own, beside the request bodies of
// bodies.ts. The OpenAPI document (openapi.ts) is generated from them, and
// apps/api/test/openapi.test.ts checks real answers against them, so they cannot describe a shape
// the server does not send.

export const ApiErrorBody = z.strictObject({
  error: z.strictObject({
    code: z.enum(ERROR_CODES as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

export const HealthResponse = z.strictObject({ status: z.literal("ok") });
const Check = z.strictObject({ ok: z.boolean(), error: z.string().optional(), kind: z.string().optional() });
export const ReadyResponse = z.strictObject({
  status: z.enum(["ready", "not_ready"]),
  checks: z.strictObject({ database: Check, bus: Check, shutdown: Check }),
});
export const WhoamiResponse = z.strictObject({ name: z.string(), role: Role });
export const JobListResponse = z.strictObject({ items: z.array(Job), nextCursor: z.string().nullable() });
export const JobLogsResponse = z.strictObject({
  jobId: z.string(),
  state: JobState,
  lines: z.array(LogLine),
  /** Pass as `after` to read on. */
  nextAfter: z.number().int(),
});
/** The last event of a job's log stream. */
export const LogStreamEnd = z.strictObject({
  jobId: z.string(),
  state: z.union([JobState, z.literal("unknown")]),
  exitCode: z.number().int().nullable(),
});
/** `ready` opens `/v1/events`; `lastEventId` is where a reconnect resumes from. */
export const EventsReady = z.strictObject({ topics: z.array(z.enum(TOPICS)), lastEventId: z.number().int() });
/** `reset` (too far behind to resume: reload) and `shutdown` (reconnect elsewhere). */
export const StreamNotice = z.strictObject({ reason: z.string() });
export const AgentListResponse = z.strictObject({ items: z.array(Agent) });
export const AgentDetail = Agent.extend({ recentHeartbeats: z.array(EVENT_SCHEMAS["agent.heartbeat"]) });
export const FleetView = z.strictObject({
  mode: FleetMode,
  desired: z.number().int(),
  actual: z.number().int(),
  /** Every online agent, the fleet's workers and any started beside it. */
  online: z.number().int(),
  replicas: z.number().int(),
  min: z.number().int(),
  max: z.number().int(),
  warm: z.number().int(),
  scaler: z.string().nullable(),
  leader: z.strictObject({ holder: z.string(), epoch: z.number().int(), since: z.string() }).nullable(),
  updatedAt: z.string(),
  updatedBy: z.string(),
  decisions: z.array(
    z.strictObject({
      at: z.string(),
      leaderEpoch: z.number().int(),
      desired: z.number().int(),
      actual: z.number().int(),
      reason: z.string(),
      inputs: z.record(z.string(), z.unknown()),
    }),
  ),
});
export type FleetView = z.infer<typeof FleetView>;
export const AuditListResponse = z.strictObject({
  items: z.array(AuditEntry),
  nextCursor: z.string().nullable(),
});
export const TokenCreateResponse = z.strictObject({
  id: z.string(),
  name: z.string(),
  role: Role,
  scope: TokenScope.nullable(),
  /** The secret, shown this once. */
  token: z.string(),
});
export const TokenListResponse = z.strictObject({ items: z.array(TokenInfo) });
export const AgentClaimResponse = z.strictObject({
  jobs: z.array(z.strictObject({ job: Job, epoch: z.number().int(), attempt: z.number().int() })),
});
export const AgentEventsResponse = z.strictObject({ cancel: z.boolean(), accepted: z.number().int() });
/** A job without its spec: what the lease paths answer with (the worker has the spec). */
export const JobHead = Job.omit({ spec: true });
export const AgentFinishResponse = z.strictObject({ job: JobHead });
export const AgentDeregisterResponse = z.strictObject({ ok: z.literal(true), requeued: z.array(z.string()) });

/** The audit checkpoints this replica made, newest first. */
export const AuditCheckpointList = z.object({ items: z.array(AuditCheckpoint), sealed: z.boolean() });

/**
 * The Overview's recent past, so a console that attaches does not start from empty charts: for each
 * bucket (oldest first), the jobs that finished in it, how many of them succeeded, and how many
 * jobs were waiting in a queue at its end.
 */
export const JobHistory = z.strictObject({
  bucketSeconds: z.number().int(),
  buckets: z.array(
    z.strictObject({
      at: z.string(),
      finished: z.number().int(),
      succeeded: z.number().int(),
      queued: z.number().int(),
    }),
  ),
});
export type JobHistory = z.infer<typeof JobHistory>;

/** How many jobs are in each state, and how many wait on each queue: the whole table, not a page. */
export const JobCounts = z.strictObject({
  states: z.record(z.string(), z.number().int()),
  queued: z.record(z.string(), z.number().int()),
});
export type JobCounts = z.infer<typeof JobCounts>;
