import { Redis, type RedisOptions } from "ioredis";
import { describeError } from "./listeners.ts";
import type { BusLogger } from "./types.ts";

/** Exponential from 100 ms, capped at 5 s: quick recovery from a blip, no hammering of a dead server. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt - 1, 6), 5_000);
}

/**
 * The one place the bus makes Redis connections. An `error` listener is always attached (without one
 * ioredis crashes the process on a connection error); repeats of the same error while reconnecting
 * are logged once, and recovery is logged.
 */
export function createRedisClient(
  url: string,
  name: string,
  logger: BusLogger,
  options: Pick<RedisOptions, "maxRetriesPerRequest" | "commandTimeout">,
): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    connectTimeout: 5_000,
    retryStrategy: reconnectDelayMs,
    connectionName: name,
    ...options,
  });
  let lastError: string | undefined;
  client.on("error", (err: unknown) => {
    const message = describeError(err);
    if (message === lastError) return;
    lastError = message;
    logger.warn({ connection: name, err: message }, "Redis connection error; reconnecting");
  });
  client.on("ready", () => {
    if (lastError === undefined) return;
    lastError = undefined;
    logger.info({ connection: name }, "Redis connection recovered");
  });
  return client;
}

/** Quits gracefully when connected (waiting until the socket is gone), else stops reconnecting at once. */
export async function closeRedisClient(client: Redis): Promise<void> {
  if (client.status === "end") return;
  if (client.status !== "ready") {
    client.disconnect();
    return;
  }
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
  await ended;
}

/** Rejects after `ms` if the promise has not settled, so a silent server cannot hang a health check. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
