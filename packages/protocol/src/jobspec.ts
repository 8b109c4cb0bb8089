import { z } from "zod";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Text PostgreSQL can store. A text or jsonb value cannot hold NUL, and a UTF-16 surrogate without
// its pair has no UTF-8 form: the driver turns it into U+FFFD (so a hash of the JS string no longer
// matches the row) or jsonb refuses its `\udXXX` escape. Either used to surface as a 500.
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Why PostgreSQL cannot store `s` as text, or null when it can. */
export function textFault(s: string): string | null {
  if (s.includes("\0")) return "must not contain NUL (U+0000)";
  if (SURROGATE.test(s) && s.search(LONE_SURROGATE) !== -1)
    return "must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF without its pair)";
  return null;
}

/** `s` with each NUL and lone surrogate replaced by U+FFFD, the policy for job output (docs/operations.md). */
export function repairText(s: string): string {
  if (textFault(s) === null) return s;
  return s.replaceAll("\0", "\uFFFD").replace(LONE_SURROGATE, "\uFFFD");
}

/**
 * The one refinement every request schema ends with: adds an issue, at its path, for each string or
 * object key anywhere in the value that PostgreSQL cannot store.
 */
export function refuseUnstorable(value: unknown, ctx: z.RefinementCtx): void {
  const path: (string | number)[] = [];
  const visit = (v: unknown): void => {
    if (typeof v === "string") {
      const fault = textFault(v);
      if (fault) ctx.addIssue({ code: "custom", path: [...path], message: fault });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        visit(v[i]);
        path.pop();
      }
    } else if (v !== null && typeof v === "object") {
      for (const [key, item] of Object.entries(v)) {
        path.push(key);
        const fault = textFault(key);
        if (fault) ctx.addIssue({ code: "custom", path: [...path], message: `the key ${fault}` });
        visit(item);
        path.pop();
      }
    }
  };
  visit(value);
}

/** `on`/`off`, also accepting YAML 1.1 booleans so `network: on` means the same in every parser. */
export const NetworkMode = z
  .union([z.enum(["on", "off"]), z.boolean()], { error: 'expected "on" or "off"' })
  .transform((v): "on" | "off" => (v === true || v === "on" ? "on" : "off"));
export type NetworkMode = z.output<typeof NetworkMode>;

export const StepSpec = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(100)
    .regex(NAME, "letters, digits, '.', '_' or '-', starting with a letter or digit"),
  run: z
    .string()
    .min(1)
    .max(64 * 1024),
  network: NetworkMode.default("off"),
  timeoutSeconds: z
    .number()
    .int()
    .positive()
    .max(7 * 24 * 3600)
    .optional(),
  env: z
    .record(z.string().regex(ENV_NAME, "environment variable name"), z.string().max(32 * 1024))
    .optional(),
});
export type StepSpec = z.output<typeof StepSpec>;

export const ResourceLimits = z.strictObject({
  memoryMb: z
    .number()
    .int()
    .min(16)
    .max(1024 * 1024)
    .default(512),
  cpus: z.number().positive().max(256).default(1),
  pids: z.number().int().min(8).max(65536).default(256),
  /** Disk for the workspace and for /tmp, each; the worker's default when absent. */
  diskMb: z
    .number()
    .int()
    .min(16)
    .max(16 * 1024 * 1024)
    .optional(),
});
export type ResourceLimits = z.output<typeof ResourceLimits>;

export const JobSpec = z
  .strictObject({
    name: z.string().min(1).max(200),
    queue: z.string().min(1).max(100).regex(NAME, "letters, digits, '.', '_' or '-'").default("default"),
    image: z.string().min(1).max(500).optional(),
    timeoutSeconds: z
      .number()
      .int()
      .positive()
      .max(7 * 24 * 3600)
      .default(3600),
    maxAttempts: z.number().int().min(1).max(100).default(3),
    resources: ResourceLimits.default({ memoryMb: 512, cpus: 1, pids: 256 }),
    env: z
      .record(z.string().regex(ENV_NAME, "environment variable name"), z.string().max(32 * 1024))
      .default({}),
    secrets: z.array(z.string().regex(ENV_NAME, "environment variable name")).max(100).default([]),
    steps: z.array(StepSpec).min(1, "a job needs at least one step").max(100),
  })
  .superRefine((spec, ctx) => {
    const seen = new Set<string>();
    spec.steps.forEach((step, i) => {
      if (seen.has(step.name)) {
        ctx.addIssue({
          code: "custom",
          path: ["steps", i, "name"],
          message: `duplicate step name "${step.name}"`,
        });
      }
      seen.add(step.name);
    });
  })
  .superRefine(refuseUnstorable);
/** A validated job spec with defaults filled in. */
export type JobSpec = z.output<typeof JobSpec>;
/** A job spec as a user writes it, before defaults. */
export type JobSpecInput = z.input<typeof JobSpec>;
