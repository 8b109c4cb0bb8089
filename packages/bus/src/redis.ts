import { randomUUID } from "node:crypto";
import { parseEvent, type SkiffEvent } from "@skiff/protocol";
import { closeRedisClient, createRedisClient, withTimeout } from "./client.ts";
import { Coalescer } from "./coalesce.ts";
import { describeError, Listeners } from "./listeners.ts";
import { type Bus, BusClosedError, type BusLogger, consoleLogger } from "./types.ts";
import { checkQueueName, parseWakeMessage } from "./wake.ts";

/** Events held while Redis is away; past this the oldest are dropped. */
const MAX_HELD_EVENTS = 10_000;
const HELD_BATCH = 500;
/** How long held events wait for the other replicas' subscriptions to be back after an outage. */
const SUBSCRIBERS_WAIT_MS = 10_000;
/** Retries of held events while Redis answers but a send failed: from 1 s, doubling to 10 s. */
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 10_000;

export interface RedisBusOptions {
  url: string;
  /** Namespaces the channels, so several stacks (or tests) can share one Redis. */
  prefix?: string;
  logger?: BusLogger;
}

/**
 * Redis pub/sub bus. Local listeners hear this process's own events through the Redis round trip,
 * so every replica sees the same order. Resolves once subscribed, or as soon as the first connection
 * attempt fails: the bus then keeps reconnecting (and resubscribing) with backoff while `ping()`
 * reports it not ready; `publish()` never waits for Redis: while it is away events are held in
 * order and sent when it is back.
 */
export async function createRedisBus(options: RedisBusOptions): Promise<Bus> {
  const prefix = options.prefix ?? "skiff";
  const logger = options.logger ?? consoleLogger;
  const channels = { events: `${prefix}:events`, wake: `${prefix}:wake` };

  // One retry per command, so a dead Redis makes publish reject instead of queueing forever.
  const publisher = createRedisClient(options.url, `${prefix}:bus:publisher`, logger, {
    maxRetriesPerRequest: 1,
    commandTimeout: 5_000,
  });
  // The subscription waits for a connection however long it takes; ioredis resubscribes after reconnects.
  const subscriber = createRedisClient(options.url, `${prefix}:bus:subscriber`, logger, {
    maxRetriesPerRequest: null,
  });

  // Wake-ups are delivered to this process's claimers at once and tagged with this id on the wire,
  // so the copy Redis echoes back is skipped: a claim woken by a local submit does not wait for a
  // Redis round trip (ordering does not matter for wake-ups, unlike events).
  const self = randomUUID();
  const events = new Listeners<SkiffEvent>("event", logger);
  const wakes = new Listeners<string>("wake", logger);
  let closed = false;

  subscriber.on("message", (channel: string, message: string) => {
    if (channel === channels.events) deliver(channel, message, (raw) => [parseEvent(raw)], events);
    else if (channel === channels.wake) deliver(channel, message, wakesFromOthers, wakes);
  });

  // Events travel one per message or, from the coalescer below, as an array; a bad element of an
  // array is dropped on its own and the rest are delivered.
  function deliver<T>(
    channel: string,
    message: string,
    parse: (raw: unknown) => T[],
    to: Listeners<T>,
  ): void {
    const drop = (err: unknown, text: string) =>
      logger.warn(
        { channel, err: describeError(err).slice(0, 500), message: text.slice(0, 200) },
        "dropped an invalid bus message",
      );
    let raw: unknown;
    try {
      raw = JSON.parse(message);
    } catch (err) {
      drop(err, message);
      return;
    }
    const parts = channel === channels.events && Array.isArray(raw) ? raw : [raw];
    for (const part of parts) {
      let values: T[];
      try {
        values = parse(part);
      } catch (err) {
        drop(err, parts.length > 1 ? JSON.stringify(part) : message);
        continue;
      }
      for (const value of values) to.emit(value);
    }
  }

  function wakesFromOthers(raw: unknown): string[] {
    const fromSelf = typeof raw === "object" && raw !== null && "from" in raw && raw.from === self;
    return fromSelf ? [] : parseWakeMessage(raw);
  }

  // How many connections (this process's and other replicas') listened for events when Redis was
  // last seen healthy. Held events wait, up to SUBSCRIBERS_WAIT_MS, for as many to be back after an
  // outage: sent before the other replicas resubscribe, they would reach no one there.
  let knownSubscribers = 0;
  const sendEvents = async (batch: SkiffEvent[]) => {
    // PUBLISH answers how many subscribers got it: while healthy, that is who must be back after an outage.
    const receivers = await publisher.publish(
      channels.events,
      JSON.stringify(batch.length === 1 ? batch[0] : batch),
    );
    if (held.length === 0) knownSubscribers = receivers;
  };
  // While Redis is away, what is published is held here, in order, and sent once both connections
  // are back: a write to the API never waits on Redis, and no event is lost to a short outage. Past
  // MAX_HELD_EVENTS the oldest are dropped, and the count is logged when Redis is back.
  const held: SkiffEvent[] = [];
  let heldDropped = 0;
  let flushing: Promise<void> | null = null;
  const connected = () => publisher.status === "ready" && subscriber.status === "ready";
  function hold(batch: SkiffEvent[], why: string): void {
    if (held.length === 0) logger.warn({ prefix, why }, "Redis away: holding events to send when it is back");
    held.push(...batch);
    const over = held.length - MAX_HELD_EVENTS;
    if (over > 0) {
      held.splice(0, over);
      heldDropped += over;
    }
  }
  const countSubscribers = async (): Promise<number> => {
    const reply = (await publisher.call("PUBSUB", "NUMSUB", channels.events)) as [string, number | string];
    return Number(reply[1] ?? 0);
  };
  const noteSubscribers = () =>
    countSubscribers().then(
      (n) => {
        if (held.length === 0) knownSubscribers = n;
      },
      () => {},
    );
  async function subscribersBack(): Promise<void> {
    // A PING answered on the subscriber proves its own resubscription is active (commands run in order).
    await withTimeout(subscriber.ping(), 5_000, "Redis ping");
    const deadline = Date.now() + SUBSCRIBERS_WAIT_MS;
    while (!closed && connected() && Date.now() < deadline) {
      if ((await countSubscribers()) >= knownSubscribers) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  // A send that failed while both connections stayed up (a timeout, a busy Redis) leaves nothing to
  // wait for: no "ready" comes. So held events are also retried on a timer, with backoff.
  let retryTimer: NodeJS.Timeout | null = null;
  let retryMs = RETRY_MIN_MS;
  function retryLater(): void {
    if (retryTimer || closed) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      flushHeld();
    }, retryMs);
    retryTimer.unref();
    retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
  }
  function flushHeld(): void {
    if (flushing || held.length === 0 || closed) return;
    if (!connected()) return; // the next "ready" flushes
    flushing = (async () => {
      try {
        await subscribersBack();
      } catch {
        retryLater(); // away again, or slow: the next "ready" or the timer tries again
        return;
      }
      let sent = 0;
      while (held.length > 0 && !closed && connected()) {
        const batch = held.slice(0, HELD_BATCH);
        try {
          await sendEvents(batch);
        } catch {
          retryLater(); // still away or slow; the next "ready" or the timer tries again
          break;
        }
        held.splice(0, batch.length);
        sent += batch.length;
      }
      if (held.length === 0) {
        logger.info({ prefix, sent, dropped: heldDropped }, "Redis back: held events sent");
        heldDropped = 0;
        retryMs = RETRY_MIN_MS;
      }
    })().finally(() => {
      flushing = null;
    });
  }
  publisher.on("ready", flushHeld);
  subscriber.on("ready", flushHeld);

  const outgoingEvents = new Coalescer<SkiffEvent>(async (batch) => {
    if (held.length > 0 || !connected()) {
      hold(batch, "not connected");
      if (connected()) flushHeld();
      return;
    }
    try {
      await sendEvents(batch);
    } catch (err) {
      hold(batch, describeError(err).slice(0, 200));
      retryLater();
    }
  });
  const outgoingWakes = new Coalescer<string>(async (batch) => {
    // Wake-ups are hints (claimers also poll), and this process's own claimers were woken already:
    // while Redis is away they are not worth holding.
    if (publisher.status !== "ready") return;
    await publisher.publish(channels.wake, JSON.stringify({ queues: [...new Set(batch)], from: self }));
  });

  const subscribed = subscriber.subscribe(channels.events, channels.wake);
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
    subscribed.then(
      () => {
        if (publisher.status === "ready") void noteSubscribers();
        done();
      },
      (err: unknown) => {
        if (!closed) logger.error({ prefix, err: describeError(err) }, "Redis bus subscription failed");
        done();
      },
    );
  });

  function ensureOpen(): void {
    if (closed) throw new BusClosedError();
  }

  return {
    kind: "redis",
    async publish(event) {
      ensureOpen();
      await outgoingEvents.push(parseEvent(event));
    },
    subscribe: (listener) => events.add(listener),
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
      // (re)subscription ioredis sent when it connected is active: no event published after this is missed.
      await withTimeout(Promise.all([publisher.ping(), subscriber.ping()]), 5_000, "Redis ping");
      void noteSubscribers();
    },
    async close() {
      if (closed) return;
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      events.clear();
      wakes.clear();
      await Promise.all([closeRedisClient(publisher), closeRedisClient(subscriber)]);
    },
  };
}
