import type { BusLogger } from "../src/index.ts";

/** Records what a listener receives and lets a test wait, with a deadline, until a condition holds. */
export class Recorder<T> {
  readonly seen: T[] = [];
  readonly #checks = new Set<() => void>();

  readonly listener = (value: T): void => {
    this.seen.push(value);
    for (const check of this.#checks) check();
  };

  async until(what: string, done: (seen: readonly T[]) => boolean, timeoutMs = 5_000): Promise<void> {
    if (done(this.seen)) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done(this.seen)) return;
        clearTimeout(timer);
        this.#checks.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#checks.delete(check);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw ${JSON.stringify(this.seen)}`),
        );
      }, timeoutMs);
      this.#checks.add(check);
    });
  }
}

export interface LogEntry {
  level: "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}

export function recordingLogger(): { logger: BusLogger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const logger: BusLogger = {
    info: (fields, message) => entries.push({ level: "info", message, fields }),
    warn: (fields, message) => entries.push({ level: "warn", message, fields }),
    error: (fields, message) => entries.push({ level: "error", message, fields }),
  };
  return { logger, entries };
}

/** Retries `attempt` until it resolves, failing with its last error once the deadline passes. */
export async function eventually(
  what: string,
  attempt: () => Promise<unknown>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await attempt();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: err });
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
