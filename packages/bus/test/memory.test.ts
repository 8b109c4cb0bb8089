import type { SkiffEvent } from "@skiff/protocol";
import { describe, expect, it } from "vitest";
import { BusClosedError, createBus, createMemoryBus } from "../src/index.ts";
import { jobCreated, jobIds, Recorder, recordingLogger } from "./helpers.ts";

describe("memory bus", () => {
  it("delivers an event to every subscriber, never on the publisher's stack", async () => {
    const bus = createMemoryBus();
    const first = new Recorder<SkiffEvent>();
    const second = new Recorder<SkiffEvent>();
    bus.subscribe(first.listener);
    bus.subscribe(second.listener);

    const published = bus.publish(jobCreated("j1"));
    expect(first.seen).toEqual([]);
    await published;

    await first.until("j1 on the first subscriber", (seen) => seen.length === 1);
    await second.until("j1 on the second subscriber", (seen) => seen.length === 1);
    expect(first.seen).toEqual([jobCreated("j1")]);
    expect(second.seen).toEqual([jobCreated("j1")]);
    await bus.close();
  });

  it("keeps publish order and stops delivering to an unsubscribed listener", async () => {
    const bus = createMemoryBus();
    const kept = new Recorder<SkiffEvent>();
    const dropped = new Recorder<SkiffEvent>();
    bus.subscribe(kept.listener);
    const unsubscribe = bus.subscribe(dropped.listener);

    await bus.publish(jobCreated("before"));
    await kept.until("the first event", (seen) => seen.length === 1);
    unsubscribe();
    await bus.publish(jobCreated("after-1"));
    await bus.publish(jobCreated("after-2"));
    await kept.until("both later events", (seen) => seen.length === 3);

    expect(jobIds(kept.seen)).toEqual(["before", "after-1", "after-2"]);
    expect(jobIds(dropped.seen)).toEqual(["before"]);
    await bus.close();
  });

  it("logs a throwing listener and still delivers to the others", async () => {
    const { logger, entries } = recordingLogger();
    const bus = createMemoryBus({ logger });
    const after = new Recorder<SkiffEvent>();
    bus.subscribe(() => {
      throw new Error("listener bug");
    });
    bus.subscribe(after.listener);

    await bus.publish(jobCreated("j1"));
    await after.until("j1 despite the throwing listener", (seen) => seen.length === 1);
    expect(entries).toEqual([
      { level: "error", message: "event listener threw", fields: { err: "listener bug" } },
    ]);
    await bus.close();
  });

  it("hands listeners a copy, so a listener cannot change the publisher's event", async () => {
    const bus = createMemoryBus();
    const event = jobCreated("j1");
    const received = new Recorder<SkiffEvent>();
    bus.subscribe((copy) => {
      if ("queue" in copy.payload) copy.payload.queue = "tampered";
      received.listener(copy);
    });

    await bus.publish(event);
    await received.until("j1", (seen) => seen.length === 1);
    expect(event.payload.queue).toBe("default");
    await bus.close();
  });

  it("wakes onWake listeners until they unsubscribe", async () => {
    const bus = createMemoryBus();
    const kept = new Recorder<string>();
    const dropped = new Recorder<string>();
    bus.onWake(kept.listener);
    const unsubscribe = bus.onWake(dropped.listener);
    unsubscribe();

    await bus.wake("gpu");
    await kept.until("a wake for gpu", (seen) => seen.length === 1);
    expect(kept.seen).toEqual(["gpu"]);
    expect(dropped.seen).toEqual([]);
    await expect(bus.wake("")).rejects.toThrow(/queue name/);
    await bus.close();
  });

  it("rejects a malformed event at publish instead of delivering it", async () => {
    const bus = createMemoryBus();
    // Simulates a caller that bypassed the types (e.g. built the event from unchecked data).
    const malformed = { name: "job.created", payload: { jobId: 7 } } as unknown as SkiffEvent;
    await expect(bus.publish(malformed)).rejects.toThrow();
    await bus.close();
  });

  it("answers ping while open and rejects everything after close", async () => {
    const bus = createMemoryBus();
    await expect(bus.ping()).resolves.toBeUndefined();
    await bus.close();
    await expect(bus.ping()).rejects.toBeInstanceOf(BusClosedError);
    await expect(bus.publish(jobCreated("late"))).rejects.toBeInstanceOf(BusClosedError);
    await expect(bus.wake("default")).rejects.toBeInstanceOf(BusClosedError);
  });

  it("is what createBus gives without a Redis URL", async () => {
    const bus = await createBus();
    expect(bus.kind).toBe("memory");
    await bus.close();
  });
});
