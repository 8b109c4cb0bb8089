import type { AuditEntry, SkiffEvent } from "@skiff/protocol";
import { openStore, type Store } from "@skiff/store";
import { waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Controller, type Scaler } from "../src/index.ts";

/**
 * A scaler whose "workers" are agents registered straight in the store, so the controller's own
 * doings (decisions, drains, leadership) are all there is to see.
 */
function storeScaler(store: Store): Scaler & { names: Set<string> } {
  const names = new Set<string>();
  let n = 0;
  return {
    kind: "embedded",
    names,
    list: () => [...names],
    async add(count: number) {
      for (let i = 0; i < count; i++) {
        const name = `ev-w${++n}`;
        names.add(name);
        await store.registerAgent(
          {
            name,
            version: "0.1.0",
            slots: 2,
            labels: { queue: "default" },
            queues: ["default"],
            sandbox: "bwrap",
            resources: {},
            tokenId: null,
          },
          { actor: name, role: "agent" },
        );
      }
    },
    async close() {},
  };
}

describe("the controller's changes are in the event log, each in its own transaction [pglite]", () => {
  let store: Store;
  let controller: Controller;
  let scaler: ReturnType<typeof storeScaler>;
  beforeAll(async () => {
    store = await openStore({});
    scaler = storeScaler(store);
    controller = new Controller(store, scaler, {
      holder: "ctl-events",
      tickMs: 100,
      slotsPerWorker: 2,
      decide: { upCooldownMs: 0, downCooldownMs: 0, downStableMs: 0 },
      log: () => {},
    });
    controller.start();
  });
  afterAll(async () => {
    await controller?.stop();
    await store?.close();
  });

  // What the API replicas relay: the log as numbered, read back in order.
  let events: SkiffEvent[] = [];
  const read = async () => {
    await store.numberEvents();
    events = (await store.eventsAfter(0, 100_000)).map(
      (e) => ({ name: e.name, payload: e.payload }) as SkiffEvent,
    );
    return true;
  };
  const published = (name: string) => events.filter((e) => e.name === name);
  const audited = () => published("audit.appended").map((e) => e.payload as AuditEntry);

  it("a decision, each drain of a scale-down and leadership reach the stream with their audit entries, with no seq missing", async () => {
    await store.updateFleet({ mode: "manual", replicas: 3 }, { actor: "ann", role: "admin" });
    await waitFor("three workers", () => scaler.names.size === 3, 10_000, 50);
    await waitFor(
      "the decision for 3",
      async () =>
        (await read()) &&
        published("fleet.changed").some((e) => (e.payload as { desired?: number }).desired === 3),
    );
    await store.updateFleet({ mode: "manual", replicas: 1 }, { actor: "ann", role: "admin" });
    await waitFor(
      "two drains",
      async () =>
        (await read()) &&
        published("agent.status").filter((e) => (e.payload as { activity: string }).activity === "draining")
          .length === 2,
      10_000,
      50,
    );
    await read();
    expect(published("fleet.changed").map((e) => e.payload)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ desired: 3, reason: expect.any(String) }),
        expect.objectContaining({ desired: 1 }),
      ]),
    );
    const actions = audited().map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["controller.leader", "fleet.scale", "agent.drain"]));
    expect(actions.filter((a) => a === "agent.drain")).toHaveLength(2);
    // Every entry the controller wrote is on the stream: the console's audit view has no gaps.
    const written = (await store.listAudit({ limit: 100 })).filter((a) => a.actor === "ctl-events");
    expect(written.length).toBeGreaterThan(0);
    expect(
      audited()
        .filter((a) => a.actor === "ctl-events")
        .map((a) => a.seq)
        .sort((x, y) => x - y),
    ).toEqual(written.map((a) => a.seq).sort((x, y) => x - y));
  });

  it("reports how many workers its scaler runs, which an agent started beside the fleet is not among", async () => {
    const mine = scaler.names.size;
    expect(mine).toBeGreaterThan(0);
    await store.registerAgent(
      {
        name: "by-hand",
        version: "0.1.0",
        slots: 1,
        labels: {},
        queues: ["default"],
        sandbox: "bwrap",
        resources: {},
        tokenId: null,
      },
      { actor: "by-hand", role: "agent" },
    );
    // Every worker the scaler runs (draining ones too, until they are gone), not the one by hand.
    await waitFor(
      "the scaler's count",
      async () => (await store.getLeadership()).workers === mine,
      10_000,
      50,
    );
    expect((await store.listAgents({ includeOffline: false })).length).toBeGreaterThan(mine);
    await read();
    const told = published("fleet.changed").map((e) => e.payload as { actual?: number; desired?: number });
    expect(told.filter((p) => p.desired === undefined).at(-1)).toMatchObject({ actual: mine });
    // A fenced (deposed) leader's count is not stored.
    const lead = await store.getLeadership();
    expect(await store.reportWorkers(lead.epoch - 1, 9)).toBe(false);
    expect((await store.getLeadership()).workers).toBe(mine);
  });

  it("a decision and its audit entry are one transaction: a fenced decision writes no entry", async () => {
    const before = (await store.listAudit({ limit: 1 }))[0]?.seq ?? 0;
    const { value, audit } = await store.recordScaleDecision(
      { leaderEpoch: 0, desired: 9, actual: 1, reason: "from a deposed leader", inputs: {} },
      1,
      { actor: "old-leader", role: "system" },
    );
    expect(value).toBe(false);
    expect(audit).toEqual([]);
    expect((await store.listAudit({ limit: 1 }))[0]?.seq).toBe(before);
  });
});

describe("the autoscaler counts only jobs its workers could take [pglite]", () => {
  let store: Store;
  let controller: Controller;
  let scaler: ReturnType<typeof storeScaler>;
  const admin = { actor: "ann", role: "admin" };
  beforeAll(async () => {
    store = await openStore({});
    scaler = storeScaler(store);
    controller = new Controller(store, scaler, {
      holder: "ctl-unserved",
      tickMs: 50,
      slotsPerWorker: 2,
      decide: { upCooldownMs: 0, downCooldownMs: 0, downStableMs: 0 },
      log: () => {},
      queues: ["default"],
    });
  });
  afterAll(async () => {
    await controller?.stop();
    await store?.close();
  });

  const spec = (queue: string) => ({
    name: "q",
    queue,
    steps: [{ name: "s", run: "true", network: "off" as const }],
    timeoutSeconds: 60,
    maxAttempts: 1,
    resources: { memoryMb: 64, cpus: 1, pids: 64 },
    env: {},
    secrets: [],
  });

  it("300 jobs on a queue no worker of this fleet serves start no worker; jobs on its own queue do, and the decision says how many were left out", async () => {
    await store.updateFleet({ mode: "auto", min: 0, max: 5, warm: 0 }, admin);
    for (let i = 0; i < 300; i++) await store.submitJob(spec("nobody-serves-this"), admin);
    controller.start();
    // Several reconciles with only the unserved backlog: the fleet stays at its minimum.
    await new Promise((r) => setTimeout(r, 500));
    expect(scaler.names.size).toBe(0);
    for (let i = 0; i < 4; i++) await store.submitJob(spec("default"), admin);
    await waitFor("two workers for four default jobs", () => scaler.names.size === 2, 10_000, 50);
    const [decision] = await store.recentDecisions(1);
    expect(decision).toMatchObject({ desired: 2 });
    expect(decision?.inputs).toMatchObject({ queued: 4, unservedQueued: 300 });
  });
});
