import { describe, expect, it } from "vitest";
import { BusClosedError, createBus, createMemoryBus } from "../src/index.ts";
import { Recorder, recordingLogger } from "./helpers.ts";

describe("memory bus", () => {
  it("delivers wake-ups to every listener, in order, never on the caller's stack", async () => {
    const bus = createMemoryBus();
    const first = new Recorder<string>();
    const second = new Recorder<string>();
    bus.onWake(first.listener);
    bus.onWake(second.listener);

    const woken = bus.wake("gpu");
    expect(first.seen).toEqual([]);
    await woken;
    await bus.wake("cpu");

    await first.until("both wakes on the first listener", (seen) => seen.length === 2);
    await second.until("both wakes on the second listener", (seen) => seen.length === 2);
    expect(first.seen).toEqual(["gpu", "cpu"]);
    expect(second.seen).toEqual(["gpu", "cpu"]);
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

  it("logs a throwing listener and still wakes the others", async () => {
    const { logger, entries } = recordingLogger();
    const bus = createMemoryBus({ logger });
    const after = new Recorder<string>();
    bus.onWake(() => {
      throw new Error("listener bug");
    });
    bus.onWake(after.listener);

    await bus.wake("gpu");
    await after.until("the wake despite the throwing listener", (seen) => seen.length === 1);
    expect(entries).toEqual([
      { level: "error", message: "wake listener threw", fields: { err: "listener bug" } },
    ]);
    await bus.close();
  });

  it("answers ping while open and rejects everything after close", async () => {
    const bus = createMemoryBus();
    await expect(bus.ping()).resolves.toBeUndefined();
    await bus.close();
    await expect(bus.ping()).rejects.toBeInstanceOf(BusClosedError);
    await expect(bus.wake("default")).rejects.toBeInstanceOf(BusClosedError);
  });

  it("is what createBus gives without a Redis URL", async () => {
    const bus = await createBus();
    expect(bus.kind).toBe("memory");
    await bus.close();
  });
});
