import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@skiff/store";
import {
  createTestDatabase,
  describeWith,
  freePort,
  pgGate,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";

const root = new URL("../../../", import.meta.url).pathname;

interface Ctl {
  name: string;
  child: ChildProcess;
  url: string;
}

async function startController(databaseUrl: string, name: string, home: string): Promise<Ctl> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "apps/cli/src/main.ts",
      "controller",
      "--scaler",
      "process",
      "--port",
      String(port),
      "--name",
      name,
    ],
    {
      cwd: root,
      env: { ...process.env, DATABASE_URL: databaseUrl, SKIFF_HOME: home, SKIFF_LOG_LEVEL: "warn" },
      stdio: "ignore",
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `controller ${name} to answer`,
    async () => (await fetch(`${url}/healthz`).catch(() => null))?.ok,
    30_000,
    100,
  );
  return { name, child, url };
}

const snapshot = async (c: Ctl) =>
  (await (await fetch(`${c.url}/snapshot`)).json()) as { leader: { leading: boolean; epoch: number | null } };

describeWith(await pgGate(), "two skiff controller processes on one PostgreSQL", () => {
  let database: TestDatabase;
  let store: Store;
  const home = mkdtempSync(join(tmpdir(), "skiff-ctl-"));
  const ctls: Ctl[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 2 });
    // No workers: this is about who leads, not about scaling.
    await store.updateFleet({ mode: "manual", replicas: 0 }, { actor: "test", role: "operator" });
  });
  afterAll(async () => {
    for (const c of ctls)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
    await store?.close();
    await database?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  it("exactly one leads; kill -9 of the leader hands over within seconds; the old epoch is refused", async () => {
    ctls.push(
      await startController(database.url, "ctl-a", home),
      await startController(database.url, "ctl-b", home),
    );
    const leader = await waitFor(
      "one leader",
      async () => {
        const states = await Promise.all(ctls.map(snapshot));
        const leading = ctls.filter((_, i) => states[i]?.leader.leading);
        return leading.length === 1 ? leading[0] : undefined;
      },
      20_000,
      100,
    );
    const oldEpoch = (await snapshot(leader)).leader.epoch ?? -1;
    const follower = ctls.find((c) => c !== leader);
    if (!follower) throw new Error("no follower");
    expect((await snapshot(follower)).leader.leading).toBe(false);
    const killedAt = Date.now();
    leader.child.kill("SIGKILL");
    await waitFor("the follower to lead", async () => (await snapshot(follower)).leader.leading, 15_000, 100);
    const handover = Date.now() - killedAt;
    expect(handover).toBeLessThan(15_000);
    const newEpoch = (await snapshot(follower)).leader.epoch ?? -1;
    expect(newEpoch).toBeGreaterThan(oldEpoch);
    expect(
      await store.recordDecision({
        leaderEpoch: oldEpoch,
        desired: 5,
        actual: 0,
        reason: "late write",
        inputs: {},
      }),
    ).toBe(false);
    const leaders = await store.listAudit({ action: "controller.leader", limit: 10 });
    expect(leaders[0]?.actor).toBe(follower.name);
    follower.child.kill("SIGTERM");
    await new Promise((r) => follower.child.once("exit", r));
    expect(follower.child.exitCode).toBe(0);
  });
});
