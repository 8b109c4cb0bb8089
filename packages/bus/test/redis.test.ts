import { spawn, spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { SkiffEvent } from "@skiff/protocol";
import { startRedisServer, freePort as unusedPort } from "@skiff/testkit";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { type Bus, createBus, createRedisBus } from "../src/index.ts";
import { eventually, jobCreated, jobIds, Recorder, recordingLogger } from "./helpers.ts";

const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const unreachable =
  `no Redis at ${redisUrl} (start one with: redis-server --daemonize yes --bind 127.0.0.1 ` +
  `--port 6379 --save "" --appendonly no, or set REDIS_URL)`;

async function redisReachable(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

const reachable = await redisReachable(redisUrl);
// In CI a missing Redis must fail the run (as a failed test, which the summary counts); elsewhere the
// Redis tests are skipped with the reason.
if (!reachable && process.env.CI) {
  describe("redis bus", () => {
    it("has a Redis to test against (required in CI)", () => {
      throw new Error(unreachable);
    });
  });
} else if (!reachable) {
  console.warn(`skipping the Redis bus tests: ${unreachable}`);
}

// The restart test runs its own redis-server; without the binary it is skipped, except in CI.
const canRunRedisServer = spawnSync("redis-server", ["--version"]).status === 0 || Boolean(process.env.CI);

/** A fresh channel namespace per test, so concurrent tests and runs never hear each other. */
function uniquePrefix(): string {
  return `skiff-test-${randomUUID()}`;
}

const silent = recordingLogger().logger;

/** Records every event and wake-up a bus delivers. */
function listen(bus: Bus) {
  const events = new Recorder<SkiffEvent>();
  const wakes = new Recorder<string>();
  bus.subscribe(events.listener);
  bus.onWake(wakes.listener);
  return { events, wakes };
}

/** A plain Redis connection, to write or read the bus's channels directly; closed after `fn`. */
async function withRawRedis<T>(fn: (raw: Redis) => Promise<T>): Promise<T> {
  const raw = new Redis(redisUrl);
  raw.on("error", () => {});
  try {
    return await fn(raw);
  } finally {
    await raw.quit();
  }
}
const opened: Bus[] = [];
async function openBus(prefix: string, logger = silent, url = redisUrl): Promise<Bus> {
  const bus = await createRedisBus({ url, prefix, logger });
  opened.push(bus);
  return bus;
}

describe.runIf(reachable)("redis bus", () => {
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((bus) => bus.close()));
  });

  it("delivers an event published on one replica to both replicas, in the same order", async () => {
    const prefix = uniquePrefix();
    const [one, two] = [await openBus(prefix), await openBus(prefix)];
    const onOne = new Recorder<SkiffEvent>();
    const onTwo = new Recorder<SkiffEvent>();
    one.subscribe(onOne.listener);
    two.subscribe(onTwo.listener);

    for (const id of ["j1", "j2", "j3"]) await one.publish(jobCreated(id));
    await two.publish(jobCreated("j4"));

    await onTwo.until("four events on the other replica", (seen) => seen.length === 4);
    await onOne.until("four events on the publishing replica", (seen) => seen.length === 4);
    expect(jobIds(onTwo.seen)).toEqual(["j1", "j2", "j3", "j4"]);
    expect(onOne.seen).toEqual(onTwo.seen);
    expect(onTwo.seen[0]).toEqual(jobCreated("j1"));
  });

  it("wakes the claimers of the other replica", async () => {
    const prefix = uniquePrefix();
    const [one, two] = [await openBus(prefix), await openBus(prefix)];
    const woken = new Recorder<string>();
    two.onWake(woken.listener);

    await one.wake("gpu");
    await woken.until("a wake for gpu", (seen) => seen.length === 1);
    expect(woken.seen).toEqual(["gpu"]);
  });

  it("stops delivering to an unsubscribed listener", async () => {
    const prefix = uniquePrefix();
    const bus = await openBus(prefix);
    const kept = new Recorder<SkiffEvent>();
    const dropped = new Recorder<SkiffEvent>();
    bus.subscribe(kept.listener);
    bus.subscribe(dropped.listener)();

    await bus.publish(jobCreated("j1"));
    await kept.until("j1", (seen) => seen.length === 1);
    expect(dropped.seen).toEqual([]);
  });

  it("keeps buses with different prefixes apart", async () => {
    const [first, second] = [await openBus(uniquePrefix()), await openBus(uniquePrefix())];
    const { events, wakes } = listen(second);

    await first.publish(jobCreated("other-stack"));
    await first.wake("other-stack");
    // Redis handled the first bus's messages before these, so had they leaked they would be seen first.
    await second.publish(jobCreated("own"));
    await second.wake("own");

    await events.until("the bus's own event", (seen) => seen.length >= 1);
    await wakes.until("the bus's own wake", (seen) => seen.length >= 1);
    expect(jobIds(events.seen)).toEqual(["own"]);
    expect(wakes.seen).toEqual(["own"]);
  });

  it("sends what is published in one turn as one message, in order, and each caller's promise settles", async () => {
    const prefix = uniquePrefix();
    const [one, two] = [await openBus(prefix), await openBus(prefix)];
    const { events: onTwo, wakes } = listen(two);
    const messages: string[] = [];
    await withRawRedis(async (raw) => {
      await raw.subscribe(`${prefix}:events`, `${prefix}:wake`);
      raw.on("message", (_channel: string, message: string) => messages.push(message));
      const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
      await Promise.all([
        ...ids.map((id) => one.publish(jobCreated(id))),
        one.wake("gpu"),
        one.wake("gpu"),
        one.wake("cpu"),
      ]);
      await onTwo.until("fifty events", (seen) => seen.length === 50);
      await wakes.until("two wakes", (seen) => seen.length === 2);
      expect(jobIds(onTwo.seen)).toEqual(ids);
      expect(wakes.seen).toEqual(["gpu", "cpu"]);
      await eventually("the raw subscriber to hear both messages", async () => {
        if (messages.length < 2) throw new Error(`${messages.length} messages`);
      });
      // One PUBLISH for the fifty events and one for the wakes, the repeated queue sent once.
      expect(messages).toHaveLength(2);
      expect(messages.map((m) => JSON.parse(m)).find((m) => "queues" in m)?.queues).toEqual(["gpu", "cpu"]);
    });
  });

  it("wakes its own claimers at once and once: the echo from Redis is skipped", async () => {
    const prefix = uniquePrefix();
    const [one, two] = [await openBus(prefix), await openBus(prefix)];
    const onOne = new Recorder<string>();
    const onTwo = new Recorder<string>();
    one.onWake(onOne.listener);
    two.onWake(onTwo.listener);
    const sent = one.wake("local");
    await Promise.resolve();
    expect(onOne.seen).toEqual(["local"]); // before any Redis round trip
    await sent;
    await onTwo.until("the other replica's wake", (seen) => seen.length === 1);
    // A later message on the same connection arrives after the wake's echo would have.
    const events = new Recorder<SkiffEvent>();
    one.subscribe(events.listener);
    await one.publish(jobCreated("marker"));
    await events.until("the marker", (seen) => jobIds(seen).includes("marker"));
    expect(onOne.seen).toEqual(["local"]);
  });

  it("delivers the valid events of a batch and drops only the bad ones", async () => {
    const prefix = uniquePrefix();
    const { logger, entries } = recordingLogger();
    const bus = await openBus(prefix, logger);
    const { events, wakes } = listen(bus);
    await withRawRedis(async (raw) => {
      await raw.publish(
        `${prefix}:events`,
        JSON.stringify([jobCreated("a"), { name: "job.created", payload: { jobId: 7 } }, jobCreated("b")]),
      );
      await raw.publish(`${prefix}:wake`, JSON.stringify({ queues: ["x", ""] }));
      await raw.publish(`${prefix}:wake`, JSON.stringify({ queues: ["y", "z"] }));
    });
    await events.until("the two valid events", (seen) => seen.length === 2);
    await wakes.until("the valid wake batch", (seen) => seen.length === 2);
    expect(jobIds(events.seen)).toEqual(["a", "b"]);
    expect(wakes.seen).toEqual(["y", "z"]);
    expect(entries.filter((e) => e.message === "dropped an invalid bus message")).toHaveLength(2);
  });

  it("drops and logs invalid messages written raw on its channels, and keeps delivering", async () => {
    const prefix = uniquePrefix();
    const { logger, entries } = recordingLogger();
    const bus = await openBus(prefix, logger);
    const { events, wakes } = listen(bus);

    await withRawRedis(async (raw) => {
      await raw.publish(`${prefix}:events`, "not json {");
      await raw.publish(`${prefix}:events`, JSON.stringify({ name: "job.exploded", payload: {} }));
      await raw.publish(`${prefix}:events`, JSON.stringify({ name: "job.created", payload: { jobId: 7 } }));
      await raw.publish(`${prefix}:wake`, JSON.stringify({ queue: 5 }));
      await raw.publish(`${prefix}:wake`, "null");
      await raw.publish(`${prefix}:events`, JSON.stringify(jobCreated("valid")));
      await raw.publish(`${prefix}:wake`, JSON.stringify({ queue: "default" }));
    });

    await events.until("the valid event", (seen) => seen.length === 1);
    await wakes.until("the valid wake", (seen) => seen.length === 1);
    expect(events.seen).toEqual([jobCreated("valid")]);
    expect(wakes.seen).toEqual(["default"]);
    const dropped = entries.filter((entry) => entry.message === "dropped an invalid bus message");
    expect(dropped.map((entry) => entry.fields.channel)).toEqual([
      `${prefix}:events`,
      `${prefix}:events`,
      `${prefix}:events`,
      `${prefix}:wake`,
      `${prefix}:wake`,
    ]);
    await expect(bus.ping()).resolves.toBeUndefined();
  });

  it("answers ping while connected and rejects after close", async () => {
    const bus = await createRedisBus({ url: redisUrl, prefix: uniquePrefix(), logger: silent });
    await expect(bus.ping()).resolves.toBeUndefined();
    await bus.close();
    await expect(bus.ping()).rejects.toThrow(/closed/);
    await expect(bus.publish(jobCreated("late"))).rejects.toThrow(/closed/);
  });

  it("reports a dead Redis through ping, while publish holds the event instead of waiting or failing", async () => {
    const port = await unusedPort();
    const { logger, entries } = recordingLogger();
    const bus = await createRedisBus({ url: `redis://127.0.0.1:${port}`, prefix: uniquePrefix(), logger });
    try {
      expect(bus.kind).toBe("redis");
      await expect(bus.ping()).rejects.toThrow(/connection is/);
      // Resolves with nothing listening at the port at all: nothing waited for a connection.
      await bus.publish(jobCreated("held"));
      await expect(bus.ping()).rejects.toThrow(/connection is/);
      expect(entries.some((entry) => entry.message.includes("Redis unreachable at start"))).toBe(true);
      expect(entries.some((entry) => entry.message.includes("holding events"))).toBe(true);
    } finally {
      await bus.close();
    }
  });

  it.runIf(canRunRedisServer)(
    "a publish that times out while Redis stays connected is held and sent later, in order",
    { timeout: 60_000 },
    async () => {
      const port = await unusedPort();
      const password = uniquePrefix();
      const url = `redis://:${password}@127.0.0.1:${port}`;
      const server = await startRedisServer(port, password);
      try {
        const prefix = uniquePrefix();
        const listening = await openBus(prefix, silent, url);
        const publishing = await openBus(prefix, silent, url);
        const seen = new Recorder<SkiffEvent>();
        listening.subscribe(seen.listener);
        await eventually("both connected", () => Promise.all([listening.ping(), publishing.ping()]));
        await publishing.publish(jobCreated("before"));
        await seen.until("the first event", (events) => events.length === 1);
        // Redis holds every write (PUBLISH included) for 7 s: longer than the bus's command timeout,
        // while both connections stay up, so no "ready" will come to trigger a resend.
        const admin = new Redis(url);
        await admin.call("CLIENT", "PAUSE", "7000", "WRITE");
        await admin.quit();
        await publishing.publish(jobCreated("during-1"));
        await publishing.publish(jobCreated("during-2"));
        await seen.until(
          "the held events once Redis takes writes again",
          (events) => new Set(jobIds(events)).size === 3,
          30_000,
        );
        // At least once: a publish that timed out may still have reached Redis, and is sent again.
        expect([...new Set(jobIds(seen.seen))]).toEqual(["before", "during-1", "during-2"]);
        await listening.close();
        await publishing.close();
      } finally {
        await server.stop();
      }
    },
  );

  it.runIf(canRunRedisServer)(
    "starts while Redis is down, then connects, and resubscribes after Redis restarts",
    async () => {
      const port = await unusedPort();
      const password = uniquePrefix();
      const url = `redis://:${password}@127.0.0.1:${port}`;
      const prefix = uniquePrefix();
      const listening = await openBus(prefix, silent, url);
      const seen = new Recorder<SkiffEvent>();
      listening.subscribe(seen.listener);
      await expect(listening.ping()).rejects.toThrow(/connection is/);

      let server = await startRedisServer(port, password);
      try {
        await eventually("the bus to connect once Redis is up", () => listening.ping());
        const publishing = await openBus(prefix, silent, url);
        await publishing.publish(jobCreated("after-start"));
        await seen.until("the event sent after Redis came up", (events) => events.length === 1);

        await server.stop();
        await expect(listening.ping()).rejects.toThrow();
        await eventually("the publisher to see Redis gone", async () => {
          await expect(publishing.ping()).rejects.toThrow();
        });
        // Published while Redis is down: each resolves at once (Redis is not there to wait for),
        // and all arrive in order once it is back.
        for (let i = 0; i < 50; i++) await publishing.publish(jobCreated(`during-${i}`));
        await expect(publishing.ping()).rejects.toThrow();
        server = await startRedisServer(port, password);
        await eventually("both buses to reconnect", () => Promise.all([listening.ping(), publishing.ping()]));
        await seen.until("the held events", (events) => events.length === 51);
        await publishing.publish(jobCreated("after-restart"));
        await seen.until("the event sent after the restart", (events) => events.length === 52);
        expect(jobIds(seen.seen)).toEqual([
          "after-start",
          ...Array.from({ length: 50 }, (_, i) => `during-${i}`),
          "after-restart",
        ]);
      } finally {
        await server.stop();
      }
    },
  );

  it("is what createBus gives with a Redis URL", async () => {
    const bus = await createBus({ redisUrl, prefix: uniquePrefix(), logger: silent });
    opened.push(bus);
    expect(bus.kind).toBe("redis");
    // createBus does not wait for Redis (an API must start while it is away): ping says "not yet"
    // until both connections are up, which on a loaded machine can take a moment.
    await eventually("the bus to connect", () => bus.ping());
  });

  it("leaves no open handles after close: a process using the bus exits by itself", async () => {
    const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
    const fixture = fileURLToPath(new URL("./fixtures/publish-and-exit.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", fixture], {
      cwd: repoRoot,
      env: { ...process.env, BUS_TEST_REDIS_URL: redisUrl, BUS_TEST_PREFIX: uniquePrefix() },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });

    const deadlineMs = 20_000;
    const exit = await new Promise<{ code: number | null; timedOut: boolean }>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve({ code: null, timedOut: true });
      }, deadlineMs);
      child.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, timedOut: false });
      });
    });

    expect(exit, `child output:\n${output}`).toEqual({ code: 0, timedOut: false });
    expect(output).toContain("delivered job.created");
  });
});
