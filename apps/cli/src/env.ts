import { resolve } from "node:path";

/** The environment overrides every process reads (docs/design.md §9). */
export function skiffHome(env: NodeJS.ProcessEnv = process.env): string {
  // Empty counts as unset, as for the other variables: `SKIFF_HOME=` must not scatter files in the cwd.
  return resolve(env.SKIFF_HOME || ".skiff");
}

export function databaseUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.DATABASE_URL || undefined;
}

export function redisUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.REDIS_URL || undefined;
}

/** Keeps several Skiff installations on one Redis apart (default `skiff`). */
export function busPrefix(env: NodeJS.ProcessEnv = process.env): string {
  return env.SKIFF_BUS_PREFIX || "skiff";
}

/**
 * The API's agent timing, overridable from the environment because the CLI has no config file yet
 * (docs/design.md §9): `SKIFF_HEARTBEAT_INTERVAL_MS` (default 10 000), `SKIFF_OFFLINE_AFTER_MS` (30 000)
 * and `SKIFF_REAPER_INTERVAL_MS` (5 000). Tests shorten them to see an agent declared lost in seconds;
 * an operator can take the 30 s / 90 s heartbeat/offline pair this way. Unset keeps the default.
 */
export function agentTimingFromEnv(env: NodeJS.ProcessEnv = process.env): {
  heartbeatIntervalMs?: number;
  offlineAfterMs?: number;
  reaperIntervalMs?: number;
} {
  const out: { heartbeatIntervalMs?: number; offlineAfterMs?: number; reaperIntervalMs?: number } = {};
  const read = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === "") return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0)
      throw new UsageError(`${name} must be a whole number of milliseconds, got "${raw}"`);
    return n;
  };
  const heartbeat = read("SKIFF_HEARTBEAT_INTERVAL_MS");
  const offline = read("SKIFF_OFFLINE_AFTER_MS");
  const reaper = read("SKIFF_REAPER_INTERVAL_MS");
  if (heartbeat !== undefined) out.heartbeatIntervalMs = heartbeat;
  if (offline !== undefined) out.offlineAfterMs = offline;
  if (reaper !== undefined) out.reaperIntervalMs = reaper;
  return out;
}

/** Parses a port option, or throws a usage error naming the option. */
export function parsePort(value: string, option = "--port"): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`${option} must be a port number (0-65535), got "${value}"`);
  return n;
}

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Stops `stop` on the first SIGINT/SIGTERM; a second one exits at once. Returns a promise that
 * settles once the stop is done.
 */
export function onShutdownSignals(what: string, stop: () => Promise<void>): Promise<void> {
  return new Promise((resolveDone) => {
    const first = (signal: NodeJS.Signals) => {
      process.stderr.write(`\n${what}: ${signal} received, shutting down (again to force)\n`);
      // The guard's listeners go on before these come off: with none at all for an instant, a
      // repeat arriving then would meet the default action (killed, 130).
      resolveDone(stopGuarded(what, stop));
      process.off("SIGINT", first);
      process.off("SIGTERM", first);
    };
    process.on("SIGINT", first);
    process.on("SIGTERM", first);
  });
}

/**
 * Runs `stop` now, with SIGINT and SIGTERM guarded while it runs and after: whatever began the stop
 * (a signal, the console closing), a repeat within a second is the same one, since Ctrl-C reaches
 * the whole process group and launchers (pnpm, tsx) relay it as well; a later one exits at once.
 */
export function stopGuarded(what: string, stop: () => Promise<void>): Promise<void> {
  const since = Date.now();
  let stopped = false;
  const handler = (signal: NodeJS.Signals) => {
    // Once everything is closed a late signal has nothing left to interrupt: leave with the
    // outcome of the stop. (Removing the handler instead would let the default action kill the
    // process and turn a clean stop into exit 130.)
    if (stopped) process.exit(process.exitCode ?? 0);
    if (Date.now() - since < 1_000) return;
    process.stderr.write(`\n${what}: second ${signal}, exiting now\n`);
    process.exit(130);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return stop()
    .catch((err) => {
      process.stderr.write(`${what}: shutdown failed: ${(err as Error).message}\n`);
      process.exitCode = 1;
    })
    .finally(() => {
      stopped = true;
      // Everything is closed; if a stray handle still holds the event loop, exit anyway rather
      // than hang a supervisor waiting for us (the timer itself holds nothing).
      setTimeout(() => process.exit(process.exitCode ?? 0), 3_000).unref();
    });
}
