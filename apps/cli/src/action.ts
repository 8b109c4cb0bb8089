import { ApiError, AuthError, ConnectionError } from "./client.ts";
import { UsageError } from "./env.ts";
import { err } from "./output.ts";

/** Exit codes of the scripting commands (docs/design.md §8). */
export const EXIT = { ok: 0, failed: 1, usage: 2, auth: 3 } as const;

/**
 * Wraps a command's action so that what goes wrong reaches the user as one line and an exit code,
 * never a stack: API errors as `skiff: <message> (<code>)` with a hint where one helps, 401/403 and
 * a missing token as exit 3, invalid input as exit 2, everything else as exit 1. Usage errors go on to
 * `main`, which prints them and exits 2.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    exitQuietlyOnBrokenPipe();
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      process.exitCode = report(e);
    }
  };
}

let pipeGuarded = false;

/**
 * When the reader goes away (`skiff jobs logs -f | head`), stop at once and quietly, as a Unix tool
 * killed by SIGPIPE would, instead of dying on an unhandled EPIPE or following a stream nobody reads.
 */
function exitQuietlyOnBrokenPipe(): void {
  if (pipeGuarded) return;
  pipeGuarded = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
  }
}

function report(e: unknown): number {
  if (e instanceof ApiError) {
    err(`skiff: ${e.message} (${e.code})`);
    for (const issue of issuesIn(e.details)) err(`  ${issue}`);
    if (e.hint) err(`hint: ${e.hint}`);
    if (e.status === 401 || e.status === 403) return EXIT.auth;
    return e.code === "invalid_input" ? EXIT.usage : EXIT.failed;
  }
  if (e instanceof AuthError) {
    err(`skiff: ${e.message}`);
    err(`hint: ${e.hint}`);
    return EXIT.auth;
  }
  if (e instanceof ConnectionError) {
    err(`skiff: ${e.message}`);
    err(`hint: ${e.hint}`);
    return EXIT.failed;
  }
  err(`skiff: ${e instanceof Error ? e.message : String(e)}`);
  return EXIT.failed;
}

/** The `path: message` lines of an `invalid_input` error's details, when it has more than one. */
function issuesIn(details: unknown): string[] {
  const issues = (details as { issues?: unknown } | undefined)?.issues;
  if (!Array.isArray(issues) || issues.length < 2) return [];
  return issues.map((i: { path?: unknown; message?: unknown }) => `${String(i.path)}: ${String(i.message)}`);
}

/** Parses a whole-number option or argument, or throws a usage error naming it. */
export function wholeNumber(value: string, name: string, min = 0): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min)
    throw new UsageError(
      `${name} must be a whole number${min > 0 ? ` of at least ${min}` : ""}, got "${value}"`,
    );
  return n;
}
