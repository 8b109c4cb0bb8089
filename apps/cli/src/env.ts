import { resolve } from "node:path";
import pino from "pino";

/** The environment overrides every process reads (DESIGN §9). */
export function skiffHome(): string {
  return resolve(process.env.SKIFF_HOME ?? ".skiff");
}

export function databaseUrl(): string | undefined {
  return process.env.DATABASE_URL || undefined;
}

export function redisUrl(): string | undefined {
  return process.env.REDIS_URL || undefined;
}

/** Keeps several Skiff installations on one Redis apart (default `skiff`). */
export function busPrefix(): string {
  return process.env.SKIFF_BUS_PREFIX || "skiff";
}

export function createLogger(name: string) {
  return pino({ name, level: process.env.SKIFF_LOG_LEVEL ?? "info" });
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
    let stopping = false;
    let firstAt = 0;
    const handler = (signal: NodeJS.Signals) => {
      // Ctrl-C reaches the whole process group, and launchers (pnpm, tsx) relay it as well: a
      // repeat within a second is the same keypress, not a request to force.
      if (stopping && Date.now() - firstAt < 1_000) return;
      if (stopping) {
        process.stderr.write(`\n${what}: second ${signal}, exiting now\n`);
        process.exit(130);
      }
      stopping = true;
      firstAt = Date.now();
      process.stderr.write(`\n${what}: ${signal} received, shutting down (again to force)\n`);
      stop()
        .catch((err) => {
          process.stderr.write(`${what}: shutdown failed: ${(err as Error).message}\n`);
          process.exitCode = 1;
        })
        .finally(() => {
          process.off("SIGINT", handler);
          process.off("SIGTERM", handler);
          resolveDone();
        });
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
  });
}
