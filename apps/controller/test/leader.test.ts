import { openStore, type Store } from "@skiff/store";
import { createTestDatabase, describeWith, pgGate, type TestDatabase, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { LeaderElector } from "../src/index.ts";

describeWith(await pgGate(), "leader election [pg]", () => {
  let database: TestDatabase;
  const stores: Store[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => {});
    await database?.drop();
  });

  it("exactly one of two leads; when its connection dies the other takes over and the old epoch is refused", async () => {
    // Two stores = two processes' connection pools.
    const a = await openStore({ databaseUrl: database.url, poolSize: 3, applicationName: "ctl-a" });
    const b = await openStore({ databaseUrl: database.url, poolSize: 3, applicationName: "ctl-b" });
    stores.push(a, b);
    const ea = new LeaderElector(a, "ctl-a", 100);
    const eb = new LeaderElector(b, "ctl-b", 100);
    ea.start();
    eb.start();
    const first = await waitFor(
      "a leader",
      () => (ea.current.leading ? ea : eb.current.leading ? eb : undefined),
      10_000,
    );
    const other = first === ea ? eb : ea;
    const firstStore = first === ea ? a : b;
    // Several more rounds: still exactly one.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 120));
      expect([ea.current.leading, eb.current.leading].filter(Boolean)).toHaveLength(1);
    }
    const oldEpoch = first.current.epoch ?? -1;
    // Kill the leader's connections, as a crashed process would.
    const name = first === ea ? "ctl-a" : "ctl-b";
    const otherPool = first === ea ? b : a;
    await otherPool.db.query(
      "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = $1",
      [name],
    );
    await first.stop();
    await firstStore.close().catch(() => {});
    await waitFor("the other to lead", () => other.current.leading, 10_000);
    expect(other.current.epoch).toBeGreaterThan(oldEpoch);
    const otherStore = other === ea ? a : b;
    expect(
      await otherStore.recordDecision({
        leaderEpoch: oldEpoch,
        desired: 9,
        actual: 0,
        reason: "late",
        inputs: {},
      }),
    ).toBe(false);
    expect(
      await otherStore.recordDecision({
        leaderEpoch: other.current.epoch ?? -1,
        desired: 2,
        actual: 0,
        reason: "fresh",
        inputs: {},
      }),
    ).toBe(true);
    const audit = await otherStore.listAudit({ action: "controller.leader", limit: 10 });
    expect(audit.map((e) => e.actor)).toEqual(expect.arrayContaining(["ctl-a", "ctl-b"]));
    await other.stop();
  });
});
