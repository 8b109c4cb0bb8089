import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ApiConfig } from "@skiff/api";
import { formatPath } from "@skiff/protocol";
import { parseDocument } from "yaml";
import { z } from "zod";
import { UsageError } from "./env.ts";
import { describeIssues } from "./problems.ts";

/**
 * The one config file (docs/design.md §9): `--config FILE`, else `$SKIFF_HOME/skiff.yaml` when present.
 * `${env.NAME}` is replaced by that environment variable. Flags and the usual environment
 * variables (DATABASE_URL, REDIS_URL, SKIFF_URL, ...) override what the file says.
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
      /** One API URL, or a list of replicas the worker fails over between. */
      apiUrl: z.union([z.url(), z.array(z.url()).min(1)]).optional(),
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
      /** Bytes of one job's output kept (head and tail around one marker past it); the API's own cap is api.logCapBytes. */
      logCapBytes: z.number().int().min(1024).optional(),
      /** Disk for a job's workspace and /tmp (each) when the job sets none. */
      defaultDiskMb: z.number().int().min(16).optional(),
      /** The most disk a job may ask for; default: defaultDiskMb. */
      maxDiskMb: z.number().int().min(16).optional(),
      /** The unprivileged host uid a bwrap sandbox's user maps to when the worker runs as root. */
      sandboxHostUid: z.number().int().min(1).optional(),
      /** Docker network of `network: on` docker steps (see docs/security.md, 'Docker egress'). */
      dockerOnlineNetwork: z.string().min(1).optional(),
    })
    .optional(),
  controller: z
    .strictObject({
      scaler: z.enum(["embedded", "process", "compose", "kubernetes"]).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      apiUrl: z.url().optional(),
      slots: z.number().int().min(1).optional(),
      /** The queues its workers serve; only jobs queued on them size the fleet. */
      queues: z.array(z.string().min(1).max(100)).min(1).optional(),
    })
    .optional(),
});
export type SkiffFile = z.output<typeof SkiffFile>;
type Section = keyof SkiffFile;

/**
 * The sections each process reads; the others it neither resolves (`${env.X}`) nor needs. A worker
 * pod has no DATABASE_URL, and the one shared file may still say `database.url: ${env.DATABASE_URL}`.
 */
export const SECTIONS_READ = {
  api: ["database", "redis", "api"],
  up: ["database", "redis", "api", "up"],
  controller: ["database", "controller"],
  worker: ["worker"],
  all: ["database", "redis", "api", "up", "worker", "controller"],
} as const satisfies Record<string, readonly Section[]>;
export type ConfigReader = keyof typeof SECTIONS_READ;
export type ConfigFor<R extends ConfigReader> = Readonly<Pick<SkiffFile, (typeof SECTIONS_READ)[R][number]>>;

const PLACEHOLDER = /\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces `${env.NAME}` in every string of the document. An unset variable is left as written and
 * reported to `onUnset` with the field's path, so the caller decides whether it matters.
 */
export function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  onUnset: (path: (string | number)[], name: string) => void,
  path: (string | number)[] = [],
): unknown {
  if (typeof value === "string") {
    return value.replace(PLACEHOLDER, (whole, name: string) => {
      const v = env[name];
      if (v !== undefined) return v;
      onUnset(path, name);
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, onUnset, [...path, i]));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, onUnset, [...path, k])]),
    );
  }
  return value;
}

interface Problem {
  path: string;
  message: string;
}

/** Every problem in one message, each naming its field, under the file's name. */
function problemsError(file: string, problems: Problem[]): UsageError {
  const [only] = problems;
  if (problems.length === 1 && only) return new UsageError(`${file}: ${only.path}: ${only.message}`);
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`);
  return new UsageError(`${file} has ${problems.length} problems:\n${lines.join("\n")}`);
}

function readText(file: string, explicit: string | undefined): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" && !explicit) return null;
    const why =
      code === "ENOENT"
        ? "no such file"
        : code === "EISDIR"
          ? "is a directory, not a file"
          : (err as Error).message;
    throw new UsageError(`${explicit ? `--config ${explicit}` : file}: ${why}`);
  }
}

/**
 * Reads and validates the config file for one process (`reader`): every section's shape is checked,
 * but `${env.X}` must be set only in the sections that process reads, and only those are returned.
 * A bad file stops the process with every problem at once, each with its field's path.
 */
export function loadConfig<R extends ConfigReader = "all">(
  explicit: string | undefined,
  home: string,
  env: NodeJS.ProcessEnv = process.env,
  reader: R = "all" as R,
): { file: string | null; config: ConfigFor<R> } {
  const file = explicit ?? join(home, "skiff.yaml");
  const text = readText(file, explicit);
  if (text === null) return { file: null, config: {} as ConfigFor<R> };
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const messages = doc.errors.map((e) => e.message.trimEnd().replace(/\n/g, "\n    "));
    throw new UsageError(`${file}: not valid YAML:\n  ${messages.join("\n  ")}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const reads = new Set<string>(SECTIONS_READ[reader]);
  const problems: Problem[] = [];
  const unresolved = new Set<string>();
  const resolved = substituteEnv(raw, env, (path, name) => {
    if (reads.has(String(path[0])))
      problems.push({ path: formatPath(path), message: `\${env.${name}} is not set` });
    else unresolved.add(formatPath(path));
  });
  const result = SkiffFile.safeParse(resolved);
  if (!result.success) {
    // A field another process resolves may not fit its schema before it is resolved.
    problems.push(...describeIssues(SkiffFile, result.error).filter((p) => !unresolved.has(p.path)));
  }
  if (problems.length > 0 || !result.success) throw problemsError(file, problems);
  const config = Object.fromEntries(Object.entries(result.data).filter(([section]) => reads.has(section)));
  return { file, config: Object.freeze(config) as ConfigFor<R> };
}
