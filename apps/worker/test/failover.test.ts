import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { type Bus, createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import {
  createTestDatabase,
  describeWith,
  pgGate,
  redisGate,
  TEST_REDIS_URL,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AgentClient } from "../src/client.ts";
import { type RunningWorker, startWorker } from "../src/index.ts";
import { silent } from "./stack.ts";
import { switchableRelay } from "./support.ts";

const gates = async () => {
  const [pg, redis] = [await pgGate(), await redisGate()];
  return pg.available ? redis : pg;
};

/** Two API replicas on one PostgreSQL and Redis; the worker knows both, and replica A dies. */
describeWith(await gates(), "a worker with several API URLs fails over [pg, redis]", () => {
  let database: TestDatabase;
  const replicas: { store: Store; bus: Bus; api: Api; url: string }[] = [];
  let relayA: Awaited<ReturnType<typeof switchableRelay>>;
  let worker: RunningWorker;
  let operator: string;
  let workRoot: string;
  const prefix = `skiff-failover-${randomBytes(4).toString("hex")}`;

  beforeAll(async () => {
    database = await createTestDatabase();
    for (let i = 0; i < 2; i++) {
      const store = await openStore({ databaseUrl: database.url, poolSize: 4 });
      const bus = await createBus({ redisUrl: TEST_REDIS_URL, prefix });
      const api = buildApi({
        config: { port: 0, heartbeatIntervalMs: 500, offlineAfterMs: 8_000, reaperIntervalMs: 500 },
        store,
        bus,
        logger: silent,
      });
      replicas.push({ store, bus, api, url: await api.listen() });
    }
    const store = replicas[0]?.store as Store;
    operator = newTokenSecret();
    const agentToken = newTokenSecret();
    await store.createToken(
      { name: "op", role: "operator", hash: hashToken(operator) },
      { actor: "t", role: "system" },
    );
    await store.createToken(
      { name: "pool", role: "agent", hash: hashToken(agentToken) },
      { actor: "t", role: "system" },
    );
    relayA = await switchableRelay(replicas[0]?.url ?? "");
    workRoot = mkdtempSync(join(tmpdir(), "skiff-failover-"));
    worker = await startWorker(
      {
        apiUrl: `${relayA.url}, ${replicas[1]?.url}`,
        token: agentToken,
        name: "failover-worker",
        slots: 2,
        labels: { queue: "failover" },
        unsafeNoSandbox: true,
        healthPort: null,
        workRoot,
        graceMs: 1_000,
        claimWaitMs: 1_000,
        logBatchMs: 50,
      },
      silent,
    );
  });
  afterAll(async () => {
    await relayA?.up();
    await worker?.stop();
    for (const r of replicas) {
      await r.api.shutdown();
      await r.bus.close();
      await r.store.close();
    }
    await relayA?.close();
    await database?.drop();
    if (workRoot) rmSync(workRoot, { recursive: true, force: true });
  });

  const call = async (replica: number, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${replicas[replica]?.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operator}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const final = (id: string) =>
    waitFor(
      `job ${id} to finish`,
      async () => {
        const job = (await call(1, "GET", `/v1/jobs/${id}`)).body;
        return ["succeeded", "failed", "canceled", "timed_out"].includes(job.state) ? job : undefined;
      },
      60_000,
      100,
    );

  it("a job running when its replica dies finishes through the other with every line, and new jobs keep coming", {
    timeout: 120_000,
  }, async () => {
    const submitted = await call(1, "POST", "/v1/jobs", {
      name: "spans-the-outage",
      queue: "failover",
      steps: [
        { name: "s", run: "echo before; while [ ! -e go ]; do sleep 0.05; done; seq 1 2000; echo after" },
      ],
    });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    await waitFor(
      "the first line",
      async () =>
        (await call(1, "GET", `/v1/jobs/${id}/logs`)).body.lines?.some((l: any) => l.text === "before"),
      30_000,
      50,
    );
    // Replica A is gone for good: connections cut, new ones refused.
    await relayA.down();
    const dir = join(workRoot, "failover-worker");
    const ws = readdirSync(dir).find((d) => d.startsWith(`${id}-`));
    if (!ws) throw new Error("no workspace");
    writeFileSync(join(dir, ws, "go"), "");
    const done = await final(id);
    expect(done).toMatchObject({ state: "succeeded", attempt: 1 });
    const out = (await call(1, "GET", `/v1/jobs/${id}/logs?limit=10000`)).body.lines
      .filter((l: any) => l.stream === "stdout")
      .map((l: any) => l.text);
    expect(out).toEqual(["before", ...Array.from({ length: 2000 }, (_, i) => `${i + 1}`), "after"]);

    const next = await call(1, "POST", "/v1/jobs", {
      name: "after-the-outage",
      queue: "failover",
      steps: [{ name: "s", run: "echo fine" }],
    });
    expect(await final(next.body.id)).toMatchObject({ state: "succeeded" });
    // The agent never went offline: its heartbeats went to B.
    const agents = (await call(1, "GET", "/v1/agents")).body;
    const list = Array.isArray(agents) ? agents : (agents.agents ?? agents.items);
    expect(list.find((a: any) => a.name === "failover-worker")).toMatchObject({
      status: expect.not.stringMatching(/offline/),
    });
  });

  it("the client moves to the next URL at once when the first refuses connections, and says which it uses", async () => {
    const client = new AgentClient([relayA.url, replicas[1]?.url ?? ""], "no-such-token");
    expect(client.baseUrl).toBe(relayA.url);
    const err = await client
      .heartbeat({ agentId: "x", status: "idle", running: [], resources: {} })
      .catch((e) => e);
    // B answered (401 for the made-up token), not a connection error from A.
    expect(err).toMatchObject({ name: "ApiError", status: 401 });
    expect(client.baseUrl).toBe(replicas[1]?.url);
    await client.close();
  });
});
