import { z } from "zod";

export const WorkerConfig = z.strictObject({
  apiUrl: z.url({ error: "--api-url must be a URL such as http://127.0.0.1:8787" }),
  token: z.string().min(1, "--token is required (an agent token: `skiff tokens create --role agent`)"),
  name: z.string().min(1).max(200),
  slots: z.number().int().min(1).max(256).default(2),
  labels: z.record(z.string(), z.string()).default({}),
  sandbox: z.enum(["auto", "bwrap", "docker"]).default("auto"),
  unsafeNoSandbox: z.boolean().default(false),
  healthHost: z.string().default("127.0.0.1"),
  /** 0 picks a free port; null runs no health server (embedded workers). */
  healthPort: z.number().int().min(0).max(65535).nullable().default(8789),
  workRoot: z.string().default("/tmp/skiff-work"),
  graceMs: z.number().int().min(0).default(10_000),
  drainTimeoutMs: z.number().int().min(0).default(300_000),
  claimWaitMs: z.number().int().min(0).max(60_000).default(25_000),
  logBatchMs: z.number().int().min(10).max(250).default(250),
  logBatchBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024)
    .default(64 * 1024),
  logCapBytes: z
    .number()
    .int()
    .min(1024)
    .default(16 * 1024 * 1024),
  dockerSocket: z.string().default("/var/run/docker.sock"),
  dockerImage: z.string().default("debian:bookworm-slim"),
  dockerOnlineNetwork: z.string().default("bridge"),
  bwrapRootfs: z.string().optional(),
  version: z.string().default("0.1.0"),
});
export type WorkerConfig = z.output<typeof WorkerConfig>;
export type WorkerConfigInput = z.input<typeof WorkerConfig>;
