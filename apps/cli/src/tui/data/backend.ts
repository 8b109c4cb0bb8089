import type {
  Agent,
  AuditEntry,
  AuditVerifyResult,
  FleetUpdateBody,
  Job,
  JobCounts,
  JobHistory,
  JobState,
  JobWithSteps,
} from "@skiff/protocol";
import type { FleetView, Whoami } from "./schemas.ts";

/** Where a live stream stands, as the status bar shows it. */
export type FeedState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; retryAt: number; reason: string }
  | { kind: "unauthorised"; retryAt: number; reason: string }
  | { kind: "ended" }
  | { kind: "closed" };

export interface FeedHandlers {
  /** An event with its JSON data parsed (not yet validated) and its id. */
  onEvent(name: string, data: unknown, id: string | undefined): void;
  onState(state: FeedState): void;
}

export interface Feed {
  close(): void;
}

/**
 * Everything the console asks of the server. `HttpBackend` is the real one; the screen tests give a
 * fake with fixtures, so the views are tested without a network.
 */
export interface Backend {
  readonly baseUrl: string;
  whoami(): Promise<Whoami>;
  listAgents(): Promise<Agent[]>;
  getAgent(id: string): Promise<Agent>;
  drainAgent(id: string, reason: string): Promise<void>;
  listJobs(query: { state?: JobState; limit: number }): Promise<Job[]>;
  /** A page of jobs, newest first, and where the next (older) page starts; null when none is left. */
  listJobPage(query: { state?: JobState; limit: number; cursor?: string }): Promise<{
    items: Job[];
    nextCursor: string | null;
  }>;
  getJob(id: string): Promise<JobWithSteps>;
  cancelJob(id: string, reason: string): Promise<Job>;
  retryJob(id: string): Promise<Job>;
  submitJob(spec: unknown): Promise<Job>;
  getFleet(): Promise<FleetView>;
  setFleet(body: FleetUpdateBody): Promise<FleetView>;
  /** The newest entries first, a page at a time; `cursor` is the last page's `nextCursor`. */
  listAudit(query: {
    limit: number;
    cursor?: string;
  }): Promise<{ items: AuditEntry[]; nextCursor: string | null }>;
  /** Finished, succeeded and queued jobs per bucket, oldest first, for the Overview's charts. */
  jobHistory(bucketSeconds: number, buckets: number): Promise<JobHistory["buckets"]>;
  /** Jobs per state and queued jobs per queue over the whole table. */
  jobCounts(): Promise<JobCounts>;
  verifyAudit(): Promise<AuditVerifyResult>;
  /** `/v1/events` for the topics, reconnecting by itself and resuming from the last event id. */
  events(topics: readonly string[], handlers: FeedHandlers): Feed;
  /** A job's log from its first line, resuming from the last seq; ends after the `end` event. */
  jobLog(jobId: string, handlers: FeedHandlers): Feed;
}

/** Only a 404 means the object is gone; anything else (the API restarting, a 503, a 429) passes. */
export const isGone = (err: unknown): boolean => (err as { status?: number } | null)?.status === 404;
