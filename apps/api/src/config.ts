import { z } from "zod";

/** The API's settings; parsed once at start, frozen, and a bad value stops the process with its path. */
export const ApiConfig = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8787),
  skiffHome: z.string().default(".skiff"),
  databaseUrl: z.string().optional(),
  redisUrl: z.string().optional(),
  busPrefix: z.string().default("skiff"),
  heartbeatIntervalMs: z.number().int().min(100).default(10_000),
  offlineAfterMs: z.number().int().min(300).default(30_000),
  reaperIntervalMs: z.number().int().min(50).default(5_000),
  timeoutGraceSeconds: z.number().int().min(0).default(30),
  logCapBytes: z
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  logRetentionSeconds: z
    .number()
    .int()
    .min(60)
    .default(7 * 24 * 3600),
  /** An offline agent that holds no job leaves the agent list this long after it went silent. */
  agentRetentionSeconds: z
    .number()
    .int()
    .min(0)
    .default(24 * 3600),
  /**
   * How long `/v1/events` keeps events for clients that reconnect with Last-Event-ID; one further
   * behind gets `reset` and reloads. The newest thousand are kept whatever their age.
   */
  eventRetentionSeconds: z.number().int().min(10).default(3600),
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 * 1024),
  maxClaimWaitMs: z.number().int().min(0).max(60_000).default(30_000),
  /** Failed requests allowed per token (or address) per minute before 429. */
  failureLimitPerMinute: z.number().int().min(1).default(30),
  metricsPublic: z.boolean().default(true),
  shutdownDeadlineMs: z.number().int().min(100).default(10_000),
  sseKeepAliveMs: z.number().int().min(100).default(15_000),
  /**
   * Bytes an SSE client of `/v1/events` may fall behind before it is cut off (it resumes with
   * Last-Event-ID). A log stream goes at its client's pace instead, so it never falls behind that far.
   */
  sseMaxBufferBytes: z
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  /** How long a log follower may take nothing while lines wait for it before it is cut off. */
  sseStallMs: z.number().int().min(100).default(30_000),
  /** Streams (events and log follows) one token may hold open on a replica at once; more get 429. */
  sseMaxStreamsPerToken: z.number().int().min(1).default(64),
  /** How often a signed checkpoint of the audit chain's head is written out (when it moved). */
  auditCheckpointSeconds: z.number().int().min(1).default(300),
  /** A file the checkpoints are appended to as JSON lines (default $SKIFF_HOME/audit-checkpoints.jsonl under `skiff api`/`up`). */
  auditCheckpointFile: z.string().optional(),
  version: z.string().default("0.1.0"),
});
export type ApiConfig = z.output<typeof ApiConfig>;
export type ApiConfigInput = z.input<typeof ApiConfig>;
