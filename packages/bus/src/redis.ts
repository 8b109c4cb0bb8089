import { randomUUID } from "node:crypto";
import { closeRedisClient, createRedisClient, withTimeout } from "./client.ts";
import { Coalescer } from "./coalesce.ts";
import { describeError, Listeners } from "./listeners.ts";
import { type Bus, BusClosedError, type BusLogger, consoleLogger } from "./types.ts";
import { checkQueueName, parseWakeMessage } from "./wake.ts";

export interface RedisBusOptions {
  url: string;
  /** Namespaces the channels, so several stacks (or tests) can share one Redis. */
  prefix?: string;
  logger?: BusLogger;
}

/**
 * Redis pub/sub bus for wake-ups (events come from the event log in the database, not from here).
 * Resolves once subscribed, or as soon as the first connection attempt fails: the bus then keeps
 * reconnecting (and resubscribing) with backoff while `ping()` reports it not ready; `wake()` never
 * waits for Redis: while it is away, wake-ups reach only this process's listeners.
 */
export async function createRedisBus(options: RedisBusOptions): Promise<Bus> {
  const prefix = options.prefix ?? "skiff";
  const logger = options.logger ?? consoleLogger;
  const wakeChannel = `${prefix}:wake`;

  // One retry per command, so a dead Redis makes a wake-up's PUBLISH reject instead of queueing forever.
  const publisher = createRedisClient(options.url, `${prefix}:bus:publisher`, logger, {
    maxRetriesPerRequest: 1,
    commandTimeout: 5_000,
  });
  // The subscription waits for a connection however long it takes; ioredis resubscribes after reconnects.
  const subscriber = createRedisClient(options.url, `${prefix}:bus:subscriber`, logger, {
    maxRetriesPerRequest: null,
  });

  // Wake-ups are delivered to this process's listeners at once and tagged with this id on the wire,
  // so the copy Redis echoes back is skipped: a claim woken by a local submit does not wait for a
  // Redis round trip (ordering does not matter for wake-ups).
  const self = randomUUID();
  const wakes = new Listeners<string>("wake", logger);
  let closed = false;

  subscriber.on("message", (channel: string, message: string) => {
    if (channel === wakeChannel) deliver(channel, message);
  });

  function deliver(channel: string, message: string): void {
    let queues: string[];
    try {
      queues = wakesFromOthers(JSON.parse(message));
    } catch (err) {
      logger.warn(
        { channel, err: describeError(err).slice(0, 500), message: message.slice(0, 200) },
        "dropped an invalid bus message",
      );
      return;
    }
    for (const queue of queues) wakes.emit(queue);
  }

  function wakesFromOthers(raw: unknown): string[] {
    const fromSelf = typeof raw === "object" && raw !== null && "from" in raw && raw.from === self;
    return fromSelf ? [] : parseWakeMessage(raw);
  }

  const outgoingWakes = new Coalescer<string>(async (batch) => {
    // Wake-ups are hints (claimers also poll), and this process's own listeners were woken already:
    // while Redis is away they are not worth holding.
    if (publisher.status !== "ready") return;
    await publisher.publish(wakeChannel, JSON.stringify({ queues: [...new Set(batch)], from: self }));
  });

  const subscribed = subscriber.subscribe(wakeChannel);
  await new Promise<void>((resolve) => {
    const unreachable = () => {
      logger.warn({ prefix }, "Redis unreachable at start; the bus keeps retrying");
      resolve();
    };
    subscriber.once("error", unreachable);
    const done = () => {
      subscriber.off("error", unreachable);
      resolve();
    };
    subscribed.then(done, (err: unknown) => {
      if (!closed) logger.error({ prefix, err: describeError(err) }, "Redis bus subscription failed");
      done();
    });
  });

  function ensureOpen(): void {
    if (closed) throw new BusClosedError();
  }

  return {
    kind: "redis",
    async wake(queue) {
      ensureOpen();
      checkQueueName(queue);
      queueMicrotask(() => wakes.emit(queue));
      await outgoingWakes.push(queue);
    },
    onWake: (listener) => wakes.add(listener),
    async ping() {
      ensureOpen();
      for (const [role, client] of [
        ["publisher", publisher],
        ["subscriber", subscriber],
      ] as const) {
        if (client.status !== "ready") throw new Error(`Redis ${role} connection is ${client.status}`);
      }
      // Commands on one connection run in order, so a PING answered on the subscriber proves that the
      // (re)subscription ioredis sent when it connected is active: no wake-up sent after this is missed.
      await withTimeout(Promise.all([publisher.ping(), subscriber.ping()]), 5_000, "Redis ping");
    },
    async close() {
      if (closed) return;
      closed = true;
      wakes.clear();
      await Promise.all([closeRedisClient(publisher), closeRedisClient(subscriber)]);
    },
  };
}
