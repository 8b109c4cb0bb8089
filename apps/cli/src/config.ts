import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ApiConfig } from "@skiff/api";
import { formatPath } from "@skiff/protocol";
import { parse } from "yaml";
import { z } from "zod";
import { UsageError } from "./env.ts";

/**
 * The one config file (DESIGN §9): `--config FILE`, else `$SKIFF_HOME/skiff.yaml` when present.
 * `${env.NAME}` is replaced by that environment variable. Flags and the usual environment
 * variables (DATABASE_URL, REDIS_URL, ...) override what the file says.
 */
export const SkiffFile = z.strictObject({
  database: z.strictObject({ url: z.string().min(1) }).optional(),
  redis: z.strictObject({ url: z.string().min(1) }).optional(),
  api: ApiConfig.omit({ databaseUrl: true, redisUrl: true, skiffHome: true, version: true })
    .partial()
    .optional(),
  up: z
    .strictObject({
      workers: z.number().int().min(0).max(64).optional(),
      slots: z.number().int().min(1).max(64).optional(),
      sandbox: z.enum(["auto", "bwrap", "docker"]).optional(),
    })
    .optional(),
  worker: z
    .strictObject({
      apiUrl: z.url().optional(),
      name: z.string().min(1).optional(),
      slots: z.number().int().min(1).max(256).optional(),
      sandbox: z.enum(["auto", "bwrap", "docker"]).optional(),
      labels: z.record(z.string(), z.string()).optional(),
      workDir: z.string().optional(),
      healthPort: z.number().int().min(0).max(65535).optional(),
      drainTimeoutMs: z.number().int().min(0).optional(),
      graceMs: z.number().int().min(0).optional(),
      /** Private or host networks `network: on` bwrap steps may still reach (CIDR). */
      egressAllow: z.array(z.string()).optional(),
      /** Disk for a job's workspace and /tmp (each) when the job sets none. */
      defaultDiskMb: z.number().int().min(16).optional(),
      /** The unprivileged host uid a bwrap sandbox's user maps to when the worker runs as root. */
      sandboxHostUid: z.number().int().min(1).optional(),
      /** Docker network of `network: on` docker steps (see docs/security.md, 'Docker egress'). */
      dockerOnlineNetwork: z.string().min(1).optional(),
    })
    .optional(),
  controller: z
    .strictObject({
      scaler: z.enum(["embedded", "process"]).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      apiUrl: z.url().optional(),
      slots: z.number().int().min(1).optional(),
    })
    .optional(),
});
export type SkiffFile = z.output<typeof SkiffFile>;

/** Replaces `${env.NAME}` in every string of the document; an unset variable is an error. */
export function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: (string | number)[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new UsageError(`config ${formatPath(path)}: \${env.${name}} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...path, i]));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...path, k])]),
    );
  }
  return value;
}

/** Reads and validates the config file; a bad value stops the process naming the field. */
export function loadConfig(
  explicit: string | undefined,
  home: string,
  env = process.env,
): { file: string | null; config: SkiffFile } {
  const file = explicit ?? join(home, "skiff.yaml");
  if (!existsSync(file)) {
    if (explicit) throw new UsageError(`--config ${explicit}: no such file`);
    return { file: null, config: {} };
  }
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8")) ?? {};
  } catch (err) {
    throw new UsageError(`${file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  const result = SkiffFile.safeParse(substituteEnv(doc, env));
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue
      ? formatPath(issue.code === "unrecognized_keys" ? [...issue.path, issue.keys[0] ?? ""] : issue.path)
      : "";
    const what = issue?.code === "unrecognized_keys" ? "unknown field" : issue?.message;
    throw new UsageError(`${file}: ${where}: ${what}`);
  }
  return { file, config: Object.freeze(result.data) };
}
