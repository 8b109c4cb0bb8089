import { z } from "zod";
import {
  Agent,
  AgentActivity,
  AgentResources,
  AgentStatus,
  AuditEntry,
  FleetSettings,
  JobState,
} from "./model.ts";

/** Topics a client of `/v1/events` may subscribe to; each event name starts with its topic. */
export const TOPICS = ["agents", "jobs", "fleet", "audit"] as const;
export const Topic = z.enum(TOPICS);
export type Topic = z.infer<typeof Topic>;

export const EVENT_SCHEMAS = {
  "agent.registered": z.object({
    agentId: z.string(),
    name: z.string(),
    sandbox: z.string(),
    /** The whole agent as listed (slots, labels, queues, version, resources), so consoles need not fetch it. */
    agent: Agent.optional(),
  }),
  "agent.heartbeat": z.object({
    agentId: z.string(),
    activity: AgentActivity,
    at: z.string(),
    running: z.number().int(),
    /** What the agent reported with this heartbeat (CPU, memory), so consoles stay current. */
    resources: AgentResources.optional(),
  }),
  "agent.status": z.object({
    agentId: z.string(),
    status: AgentStatus,
    activity: AgentActivity,
    reason: z.string().optional(),
  }),
  "job.created": z.object({ jobId: z.string(), name: z.string(), queue: z.string() }),
  "job.state": z.object({
    jobId: z.string(),
    state: JobState,
    queue: z.string(),
    agentId: z.string().nullable(),
    epoch: z.number().int(),
    /** What the console shows beside the state (`try 2/3`, `exit 1`), so it need not refetch. */
    attempt: z.number().int().optional(),
    maxAttempts: z.number().int().optional(),
    exitCode: z.number().int().nullable().optional(),
    reason: z.string().optional(),
    /** The job's own times as stored (absent from older APIs): a console need not stamp arrival. */
    startedAt: z.string().nullable().optional(),
    finishedAt: z.string().nullable().optional(),
  }),
  "fleet.changed": FleetSettings.partial().extend({
    reason: z.string().optional(),
    /** Sent with a controller's decision: the size it chose and the size it saw. */
    desired: z.number().int().optional(),
    actual: z.number().int().optional(),
  }),
  "audit.appended": AuditEntry,
} as const;

export type EventName = keyof typeof EVENT_SCHEMAS;
export const EVENT_NAMES = Object.keys(EVENT_SCHEMAS) as EventName[];
export type EventPayload<N extends EventName> = z.infer<(typeof EVENT_SCHEMAS)[N]>;

export function topicOf(name: EventName): Topic {
  const prefix = name.slice(0, name.indexOf("."));
  const topic = prefix === "agent" ? "agents" : prefix === "job" ? "jobs" : prefix;
  return Topic.parse(topic);
}

/** An event as it travels on the bus and over SSE. */
export interface SkiffEvent<N extends EventName = EventName> {
  name: N;
  payload: EventPayload<N>;
}

// Built once, not per event: zod compiles an object schema on its first parse.
const Envelope = z.object({ name: z.enum(EVENT_NAMES as [EventName, ...EventName[]]), payload: z.unknown() });

/** Validates an event read from the bus (untrusted: another process wrote it). */
export function parseEvent(raw: unknown): SkiffEvent {
  const envelope = Envelope.parse(raw);
  const payload = EVENT_SCHEMAS[envelope.name].parse(envelope.payload);
  return { name: envelope.name, payload } as SkiffEvent;
}
