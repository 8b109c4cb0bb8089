import { createMemoryBus } from "./memory.ts";
import { createRedisBus } from "./redis.ts";
import type { Bus, BusLogger } from "./types.ts";

export { createMemoryBus, type MemoryBusOptions } from "./memory.ts";
export { createRedisBus, type RedisBusOptions } from "./redis.ts";
export { type Bus, BusClosedError, type BusLogger, consoleLogger } from "./types.ts";

export interface CreateBusOptions {
  /** Redis when given (split mode, several replicas); otherwise the in-process bus. */
  redisUrl?: string;
  prefix?: string;
  logger?: BusLogger;
}

export async function createBus(options: CreateBusOptions = {}): Promise<Bus> {
  const { redisUrl, prefix, logger } = options;
  if (redisUrl) return createRedisBus({ url: redisUrl, prefix, logger });
  return createMemoryBus({ logger });
}
