import { z } from "zod";
import { MIN_SECRET_LENGTH, tooShort } from "./mask.ts";

/** An IPv4 network in CIDR form, e.g. 203.0.113.7/32. */
const Cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/(\d|[12]\d|3[0-2])$/, "expected an IPv4 network such as 203.0.113.0/24");

/** The URLs of an `apiUrl` setting: one, or several separated by commas. */
export function apiUrls(value: string): string[] {
  return value
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
}

export const WorkerConfig = z.strictObject({
  /** One API URL, or several separated by commas (replicas the worker fails over between). */
  apiUrl: z.string().superRefine((value, ctx) => {
    const urls = apiUrls(value);
    if (urls.length === 0)
      ctx.addIssue({ code: "custom", message: "--api-url must be a URL such as http://127.0.0.1:8787" });
    for (const url of urls) {
      if (!/^https?:\/\/[^/\s]/.test(url) || !URL.canParse(url))
        ctx.addIssue({
          code: "custom",
          message: `--api-url: "${url}" is not a URL such as http://127.0.0.1:8787 (several are separated by commas)`,
        });
    }
  }),
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
  /** The unprivileged host uid (and gid) a bwrap sandbox's user maps to when the worker runs as root. */
  sandboxHostUid: z
    .number()
    .int()
    .min(1)
    .max(2 ** 31 - 2)
    .default(64_000),
  /** Private or host addresses that `network: on` steps may still reach (everything public is open). */
  egressAllow: z.array(Cidr).default([]),
  /** Disk for the workspace and for /tmp (each) when a job sets no `resources.diskMb`. */
  defaultDiskMb: z.number().int().min(16).default(10_240),
  /** The most disk a job may ask for (`resources.diskMb`); default: `defaultDiskMb`. */
  maxDiskMb: z.number().int().min(16).optional(),
  /** Secrets jobs may ask for by name; from SKIFF_SECRET_<NAME> variables unless given. */
  secrets: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a secret name is a shell variable name"),
      z.string(),
    )
    .default({})
    .superRefine((secrets, ctx) => {
      for (const name of tooShort(secrets))
        ctx.addIssue({
          code: "custom",
          path: [name],
          message: `secret ${name} is shorter than ${MIN_SECRET_LENGTH} characters (white space not counted) and could not be masked in logs; use a longer value or remove it`,
        });
    }),
  version: z.string().default("0.1.0"),
});
export type WorkerConfig = z.output<typeof WorkerConfig>;
export type WorkerConfigInput = z.input<typeof WorkerConfig>;
