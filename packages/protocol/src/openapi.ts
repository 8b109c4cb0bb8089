import { z } from "zod";
import {
  AgentClaimBody,
  AgentDeregisterBody,
  AgentDrainBody,
  AgentEventsBody,
  AgentFinishBody,
  AgentHeartbeatBody,
  AgentHeartbeatResponse,
  AgentRegisterBody,
  AgentRegisterResponse,
  AuditVerifyBody,
  FleetUpdateBody,
  JobCancelBody,
  TokenCreateBody,
} from "./bodies.ts";
import type { ErrorCode } from "./errors.ts";
import { EVENT_NAMES, EVENT_SCHEMAS, TOPICS } from "./events.ts";
import { JobSpec } from "./jobspec.ts";
import {
  Agent,
  AuditEntry,
  AuditVerifyResult,
  Job,
  JobState,
  JobWithSteps,
  LogLine,
  type Role,
  TokenInfo,
} from "./model.ts";
import {
  AgentClaimResponse,
  AgentDeregisterResponse,
  AgentDetail,
  AgentEventsResponse,
  AgentFinishResponse,
  AgentListResponse,
  ApiErrorBody,
  AuditCheckpointList,
  AuditListResponse,
  EventsReady,
  FleetView,
  HealthResponse,
  JobCounts,
  JobHistory,
  JobListResponse,
  JobLogsResponse,
  LogStreamEnd,
  ReadyResponse,
  StreamNotice,
  TokenCreateResponse,
  TokenListResponse,
  WhoamiResponse,
} from "./responses.ts";

// Query strings as the routes read them (their parsers coerce text to numbers). The routes keep
// their own copies; apps/api/test/openapi.test.ts checks that each parameter here is accepted.
const Limit = (max: number, dflt: number) => z.int().min(1).max(max).default(dflt);
const JobListQuery = z.strictObject({
  state: JobState.optional(),
  queue: z.string().max(100).optional(),
  q: z.string().max(200).optional().describe("text to find in the job's name or id"),
  limit: Limit(500, 50),
  cursor: z.string().max(500).optional().describe("`nextCursor` of the previous page"),
});
const HistoryQuery = z.strictObject({
  bucketSeconds: z.int().min(1).max(3600).default(5).describe("length of one bucket"),
  buckets: z.int().min(1).max(720).default(60).describe("how many, ending now"),
});
const JobLogsQuery = z.strictObject({
  after: z.int().min(0).default(0).describe("only lines with a greater seq"),
  limit: Limit(10_000, 1000),
});
const LogStreamQuery = z.strictObject({
  after: z.int().min(0).optional().describe("start after this seq (Last-Event-ID wins)"),
});
const EventsQuery = z.strictObject({
  topics: z
    .string()
    .max(200)
    .optional()
    .describe(`comma-separated, of ${TOPICS.join(", ")}; all when absent`),
});
const AuditListQuery = z.strictObject({
  actor: z.string().max(200).optional(),
  action: z.string().max(100).optional(),
  target: z.string().max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  cursor: z.int().positive().optional().describe("`nextCursor` of the previous page"),
  limit: Limit(1000, 100),
});

/** Request schemas, rendered as a client writes them (defaults optional). */
export const REQUEST_SCHEMAS = {
  JobSpec,
  JobCancelBody,
  JobRetryBody: z.strictObject({}),
  AgentDrainBody,
  FleetUpdateBody,
  TokenCreateBody,
  AgentRegisterBody,
  AgentHeartbeatBody,
  AgentClaimBody,
  AgentEventsBody,
  AgentFinishBody,
  AgentDeregisterBody,
  AuditVerifyBody,
};
/** Response schemas, rendered as the server sends them (defaults filled in). */
const BASE_RESPONSE_SCHEMAS: Record<string, z.ZodType> = {
  Error: ApiErrorBody,
  HealthResponse,
  ReadyResponse,
  WhoamiResponse,
  Job,
  JobWithSteps,
  JobListResponse,
  JobLogsResponse,
  LogLine,
  LogStreamEnd,
  EventsReady,
  StreamNotice,
  Agent,
  AgentDetail,
  AgentListResponse,
  FleetView,
  AuditEntry,
  AuditListResponse,
  AuditCheckpointList,
  AuditVerifyResult,
  JobCounts,
  JobHistory,
  TokenInfo,
  TokenCreateResponse,
  TokenListResponse,
  AgentRegisterResponse,
  AgentHeartbeatResponse,
  AgentClaimResponse,
  AgentEventsResponse,
  AgentFinishResponse,
  AgentDeregisterResponse,
};
/** The component of each event's payload: its own, unless it is one of the above (`audit.appended`). */
const EVENT_COMPONENTS = Object.fromEntries(
  EVENT_NAMES.map((name) => {
    const known = Object.entries(BASE_RESPONSE_SCHEMAS).find(([, s]) => s === EVENT_SCHEMAS[name]);
    return [name, known ? known[0] : `Event.${name}`];
  }),
) as Record<string, string>;
export const RESPONSE_SCHEMAS: Record<string, z.ZodType> = {
  ...BASE_RESPONSE_SCHEMAS,
  ...Object.fromEntries(EVENT_NAMES.map((name) => [EVENT_COMPONENTS[name], EVENT_SCHEMAS[name]])),
};
/** Every schema of the document by its component name. */
export const API_SCHEMAS = { ...RESPONSE_SCHEMAS, ...REQUEST_SCHEMAS } as Record<string, z.ZodType>;
type RequestName = keyof typeof REQUEST_SCHEMAS;

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";
export type OperationKey = `${HttpMethod} /${string}`;

/** What the document says about one route besides its method, path and role (which the server gives). */
export interface OperationDoc {
  id: string;
  tag: "probes" | "jobs" | "streams" | "agents" | "fleet" | "audit" | "tokens" | "agent protocol";
  summary: string;
  query?: z.ZodObject;
  body?: RequestName;
  /** The success status and its JSON schema, or `text` for a plain-text body. */
  ok: { status: number; schema?: string; text?: string };
  /** Other non-error answers (readyz's 503). */
  also?: Record<number, string>;
  /** Server-Sent Events: event name → payload schema. */
  events?: Record<string, string>;
  /** Catalog errors beyond those every route of its kind can give. */
  errors?: ErrorCode[];
}

const sse = (events: Record<string, string>) => ({ ...events, shutdown: "StreamNotice" });
const LEASE: ErrorCode[] = ["not_found", "lease_lost", "already_final", "forbidden"];

/** Every route of the API. A route the server registers without a row here fails the drift test. */
export const API_OPERATIONS: Record<OperationKey, OperationDoc> = {
  "GET /healthz": {
    id: "health",
    tag: "probes",
    summary: "Alive while the process runs.",
    ok: { status: 200, schema: "HealthResponse" },
  },
  "GET /readyz": {
    id: "ready",
    tag: "probes",
    summary: "Ready to serve: the database and the bus answer and the process is not shutting down.",
    ok: { status: 200, schema: "ReadyResponse" },
    also: { 503: "ReadyResponse" },
  },
  "GET /metrics": {
    id: "metrics",
    tag: "probes",
    summary: "Prometheus metrics.",
    ok: { status: 200, text: "text/plain" },
  },
  "GET /v1/openapi.json": {
    id: "openapi",
    tag: "probes",
    summary: "This document.",
    ok: { status: 200, text: "application/json" },
  },
  "GET /v1/whoami": {
    id: "whoami",
    tag: "tokens",
    summary: "The caller's token name and role.",
    ok: { status: 200, schema: "WhoamiResponse" },
  },
  "POST /v1/jobs": {
    id: "submitJob",
    tag: "jobs",
    summary: "Submit a job.",
    body: "JobSpec",
    ok: { status: 201, schema: "Job" },
  },
  "GET /v1/jobs": {
    id: "listJobs",
    tag: "jobs",
    summary: "Jobs, newest first, a page at a time.",
    query: JobListQuery,
    ok: { status: 200, schema: "JobListResponse" },
  },
  "GET /v1/jobs/:id": {
    id: "getJob",
    tag: "jobs",
    summary: "One job with its steps.",
    ok: { status: 200, schema: "JobWithSteps" },
  },
  "POST /v1/jobs/:id/cancel": {
    id: "cancelJob",
    tag: "jobs",
    summary: "Cancel a queued or running job (a running one passes through `canceling`).",
    body: "JobCancelBody",
    ok: { status: 200, schema: "Job" },
    errors: ["invalid_transition"],
  },
  "POST /v1/jobs/:id/retry": {
    id: "retryJob",
    tag: "jobs",
    summary: "Queue a finished job again as a new job (`retryOf` names the old one).",
    body: "JobRetryBody",
    ok: { status: 201, schema: "Job" },
    errors: ["invalid_transition"],
  },
  "GET /v1/jobs/:id/logs": {
    id: "getJobLogs",
    tag: "jobs",
    summary: "A page of a job's output lines.",
    query: JobLogsQuery,
    ok: { status: 200, schema: "JobLogsResponse" },
  },
  "GET /v1/jobs/:id/logs/stream": {
    id: "streamJobLogs",
    tag: "streams",
    summary: "A job's output as Server-Sent Events (id = seq), ending with `end` once the job is final.",
    query: LogStreamQuery,
    ok: { status: 200 },
    events: sse({ line: "LogLine", end: "LogStreamEnd" }),
    errors: ["not_ready"],
  },
  "GET /v1/events": {
    id: "streamEvents",
    tag: "streams",
    summary: "Live events of the chosen topics as Server-Sent Events; resumes from Last-Event-ID.",
    query: EventsQuery,
    ok: { status: 200 },
    events: sse({
      ready: "EventsReady",
      reset: "StreamNotice",
      ...EVENT_COMPONENTS,
    }),
    errors: ["not_ready"],
  },
  "GET /v1/agents": {
    id: "listAgents",
    tag: "agents",
    summary: "Every agent.",
    ok: { status: 200, schema: "AgentListResponse" },
  },
  "GET /v1/agents/:id": {
    id: "getAgent",
    tag: "agents",
    summary: "One agent with its recent heartbeats.",
    ok: { status: 200, schema: "AgentDetail" },
  },
  "POST /v1/agents/:id/drain": {
    id: "drainAgent",
    tag: "agents",
    summary: "Give the agent no more work; it exits once idle.",
    body: "AgentDrainBody",
    ok: { status: 200, schema: "Agent" },
  },
  "GET /v1/fleet": {
    id: "getFleet",
    tag: "fleet",
    summary: "Fleet settings, sizes, leader and the controller's last decisions.",
    ok: { status: 200, schema: "FleetView" },
  },
  "PUT /v1/fleet": {
    id: "setFleet",
    tag: "fleet",
    summary: "Set a fixed size or autoscaling bounds.",
    body: "FleetUpdateBody",
    ok: { status: 200, schema: "FleetView" },
  },
  "GET /v1/stats/history": {
    id: "jobHistory",
    tag: "jobs",
    summary:
      "Finished, succeeded and queued jobs per time bucket, oldest first: what a console charts on attach.",
    query: HistoryQuery,
    ok: { status: 200, schema: "JobHistory" },
  },
  "GET /v1/stats/jobs": {
    id: "jobCounts",
    tag: "jobs",
    summary: "Jobs per state and queued jobs per queue, over the whole table: what a console counts.",
    ok: { status: 200, schema: "JobCounts" },
  },
  "GET /v1/audit": {
    id: "listAudit",
    tag: "audit",
    summary: "Audit entries, newest first.",
    query: AuditListQuery,
    ok: { status: 200, schema: "AuditListResponse" },
  },
  "GET /v1/audit/verify": {
    id: "verifyAudit",
    tag: "audit",
    summary: "Recompute the hash chain and, with the audit key, every row's seal.",
    ok: { status: 200, schema: "AuditVerifyResult" },
  },
  "POST /v1/audit/verify": {
    id: "verifyAuditWithCheckpoints",
    tag: "audit",
    summary: "Verify as GET does, and check the log against checkpoints kept outside the database.",
    body: "AuditVerifyBody",
    ok: { status: 200, schema: "AuditVerifyResult" },
  },
  "GET /v1/audit/checkpoints": {
    id: "listAuditCheckpoints",
    tag: "audit",
    summary: "Signed checkpoints of the audit chain's head this replica made, newest first.",
    ok: { status: 200, schema: "AuditCheckpointList" },
  },
  "POST /v1/tokens": {
    id: "createToken",
    tag: "tokens",
    summary: "Create a token; the secret is in this answer only.",
    body: "TokenCreateBody",
    ok: { status: 201, schema: "TokenCreateResponse" },
  },
  "GET /v1/tokens": {
    id: "listTokens",
    tag: "tokens",
    summary: "Every token, without secrets.",
    ok: { status: 200, schema: "TokenListResponse" },
  },
  "DELETE /v1/tokens/:id": {
    id: "revokeToken",
    tag: "tokens",
    summary: "Revoke a token.",
    ok: { status: 200, schema: "TokenInfo" },
  },
  "POST /v1/agent/register": {
    id: "agentRegister",
    tag: "agent protocol",
    summary: "Register an agent; the answer carries the agent's own credential for every later call.",
    body: "AgentRegisterBody",
    ok: { status: 200, schema: "AgentRegisterResponse" },
    errors: ["out_of_scope"],
  },
  "POST /v1/agent/heartbeat": {
    id: "agentHeartbeat",
    tag: "agent protocol",
    summary: "Report liveness and running leases; the answer carries drain and cancel commands.",
    body: "AgentHeartbeatBody",
    ok: { status: 200, schema: "AgentHeartbeatResponse" },
    errors: ["not_found"],
  },
  "POST /v1/agent/claim": {
    id: "agentClaim",
    tag: "agent protocol",
    summary: "Long-poll for up to `max` jobs of the agent's queues (empty when `waitMs` passes).",
    body: "AgentClaimBody",
    ok: { status: 200, schema: "AgentClaimResponse" },
    errors: ["not_found", "out_of_scope"],
  },
  "POST /v1/agent/jobs/:id/events": {
    id: "agentJobEvents",
    tag: "agent protocol",
    summary: "Step starts and ends and numbered output lines, under the lease epoch; idempotent on seq.",
    body: "AgentEventsBody",
    ok: { status: 200, schema: "AgentEventsResponse" },
    errors: LEASE,
  },
  "POST /v1/agent/jobs/:id/finish": {
    id: "agentJobFinish",
    tag: "agent protocol",
    summary: "Report a job's outcome under the lease epoch.",
    body: "AgentFinishBody",
    ok: { status: 200, schema: "AgentFinishResponse" },
    errors: LEASE,
  },
  "POST /v1/agent/deregister": {
    id: "agentDeregister",
    tag: "agent protocol",
    summary: "Leave on a clean exit; whatever the agent still held is requeued.",
    body: "AgentDeregisterBody",
    ok: { status: 200, schema: "AgentDeregisterResponse" },
    errors: ["not_found"],
  },
};

/** A route as the server registered it. */
export interface OpenApiRoute {
  method: HttpMethod;
  url: string;
  role: Role | "none";
}

export const operationKey = (r: { method: string; url: string }) => `${r.method} ${r.url}` as OperationKey;

/** Routes that have no row in `API_OPERATIONS` (the document leaves them out). */
export function undocumentedRoutes(routes: readonly OpenApiRoute[]): string[] {
  return routes.map(operationKey).filter((key) => !(key in API_OPERATIONS));
}
