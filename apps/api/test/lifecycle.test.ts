import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPgDb, openStore } from "@skiff/store";
import { createTestDatabase, describeWith, pgGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootstrapAdmin } from "../src/index.ts";
import { hello, openSse, registerAgent, startTestApi, type TestApi } from "./harness.ts";

const pg = await pgGate();

/** A loopback port nothing listens on: bound, then released. */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The value of one Prometheus series (name with its labels, in the order prom-client prints them). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text
    .split("\n")
    .find(
      (l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && wanted.every((w) => l.includes(w)),
    );
  if (!line) throw new Error(`no ${name}${JSON.stringify(labels)} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describeWith(pg, "probes and shutdown [pg]", () => {
  it("healthz and readyz answer; during shutdown readyz is 503 and open streams get a shutdown event", async () => {
    const database = await createTestDatabase();
    const t = await startTestApi({
      adapter: "pg",
      databaseUrl: database.url,
      config: { reaperIntervalMs: 50 },
    });
    const locker = createPgDb({ connectionString: database.url, max: 2 });
    let release = () => {};
    const releasedLock = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      expect(await t.call("GET", "/healthz", { token: null })).toEqual({
        status: 200,
        body: { status: "ok" },
      });
      expect(await t.call("GET", "/readyz", { token: null })).toMatchObject({
        status: 200,
        body: {
          status: "ready",
          checks: {
            database: { ok: true, kind: "pg" },
            bus: { ok: true, kind: "memory" },
            shutdown: { ok: true },
          },
        },
      });

      const events = await openSse(`${t.url}/v1/events`, t.tokens.viewer);
      await events.waitUntil("ready", (c) => c.events.some((e) => e.event === "ready"));

      // Hold the shutdown open: a reaper pass waits on a lock, and shutdown waits for the pass.
      // The lock is taken first and only then do we look for a waiter, so the waiter found is a
      // reaper pass and not our own lock request queued behind one (which made this test flaky).
      let locked = () => {};
      const lockTaken = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const held = locker.tx(async (q) => {
        await q.query("lock table agents in exclusive mode");
        locked();
        await releasedLock;
      });
      await lockTaken;
      await waitFor("a reaper pass to wait on the lock", async () => {
        const res = await locker.query<{ n: number }>(
          "select count(*)::int as n from pg_locks where relation = 'agents'::regclass and not granted",
        );
        return (res.rows[0]?.n ?? 0) > 0;
      });
      let stopped = false;
      const shutdown = t.api.shutdown().then(() => {
        stopped = true;
      });

      const ready = await t.call("GET", "/readyz", { token: null });
      expect(ready).toMatchObject({
        status: 503,
        body: {
          status: "not_ready",
          checks: { database: { ok: true }, bus: { ok: true }, shutdown: { ok: false } },
        },
      });
      // New streams are turned away so that clients reconnect to another replica.
      const late = await t.call("GET", "/v1/events", { token: t.tokens.viewer });
      expect(late).toMatchObject({ status: 503, body: { error: { code: "not_ready" } } });
      expect(stopped).toBe(false);

      release();
      await held;
      await events.waitUntil("shutdown", (c) => c.events.some((e) => e.event === "shutdown"));
      expect(events.events.at(-1)).toMatchObject({ event: "shutdown", data: { reason: expect.any(String) } });
      expect(await events.closed).toBe("end");
      await shutdown;
      await expect(fetch(`${t.url}/healthz`)).rejects.toThrow();
    } finally {
      // A failed expectation above must not leave the lock held: the pool would never close.
      release();
      await locker.close();
      await t.close();
      await database.drop();
    }
  });

  it("bootstrapAdmin writes a working admin token with mode 0600 once, and nothing when an admin exists", async () => {
    const database = await createTestDatabase();
    const home = mkdtempSync(join(tmpdir(), "skiff-home-"));
    const store = await openStore({ databaseUrl: database.url, poolSize: 2 });
    let t: TestApi | undefined;
    try {
      const file = await bootstrapAdmin(store, join(home, "a"));
      expect(file).toBe(join(home, "a", "admin.token"));
      const token = readFileSync(join(home, "a", "admin.token"), "utf8");
      expect(token).toMatch(/^skf_[\w-]{20,}\n$/);
      expect(statSync(join(home, "a", "admin.token")).mode & 0o777).toBe(0o600);

      expect(await bootstrapAdmin(store, join(home, "a"))).toBeNull();
      expect(await bootstrapAdmin(store, join(home, "b"))).toBeNull();
      expect(readFileSync(join(home, "a", "admin.token"), "utf8")).toBe(token);
      expect(existsSync(join(home, "b", "admin.token"))).toBe(false);

      t = await startTestApi({ adapter: "pg", databaseUrl: database.url });
      const admin = token.trim();
      expect(await t.call("GET", "/v1/whoami", { token: admin })).toEqual({
        status: 200,
        body: { name: "admin", role: "admin" },
      });
      const made = await t.call("POST", "/v1/tokens", { token: admin, body: { name: "ci", role: "viewer" } });
      expect(made).toMatchObject({ status: 201, body: { name: "ci", role: "viewer" } });
    } finally {
      await t?.close();
      await store.close();
      await database.drop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("readiness without the bus [pglite]", () => {
  it("readyz is 503 naming the bus while Redis is unreachable; healthz stays 200", async () => {
    const t = await startTestApi({ adapter: "pglite", redisUrl: `redis://127.0.0.1:${await unusedPort()}` });
    try {
      const res = await t.call("GET", "/readyz", { token: null });
      expect(res).toMatchObject({
        status: 503,
        body: {
          status: "not_ready",
          checks: { database: { ok: true }, bus: { ok: false, kind: "redis", error: expect.any(String) } },
        },
      });
      expect(await t.call("GET", "/healthz", { token: null })).toEqual({
        status: 200,
        body: { status: "ok" },
      });
    } finally {
      await t.close();
    }
  });
});

describe("limits and metrics [pglite]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pglite", config: { failureLimitPerMinute: 5, bodyLimitBytes: 4096 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a bad token gets 429 with retry-after after 5 failures; a good token from the same address still works", async () => {
    const bad = () =>
      fetch(`${t.url}/v1/whoami`, { headers: { authorization: "Bearer skf_not-a-real-token" } });
    for (let i = 0; i < 5; i++) expect((await bad()).status).toBe(401);
    const limited = await bad();
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as any).error.code).toBe("rate_limited");
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    expect(await t.call("GET", "/v1/whoami", { token: t.tokens.viewer })).toEqual({
      status: 200,
      body: { name: "victor", role: "viewer" },
    });
  });

  it("a body over the limit gets 413 payload_too_large and creates nothing", async () => {
    const before = (await t.call("GET", "/v1/jobs?queue=huge", { token: t.tokens.viewer })).body.items;
    const res = await t.call("POST", "/v1/jobs", {
      token: t.tokens.operator,
      body: hello("huge", { env: { BLOB: "x".repeat(8192) } }),
    });
    expect(res).toMatchObject({ status: 413, body: { error: { code: "payload_too_large" } } });
    expect((await t.call("GET", "/v1/jobs?queue=huge", { token: t.tokens.viewer })).body.items).toEqual(
      before,
    );
  });

  it("/metrics moves with a submit, a claim and a heartbeat", async () => {
    const scrape = async () => {
      const res = await fetch(`${t.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      return res.text();
    };
    const m0 = await scrape();
    const agentId = await registerAgent(t, "metered", { queue: "metered" });
    const job = await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("metered") });
    expect(job.status).toBe(201);

    const m1 = await scrape();
    expect(metric(m1, "skiff_jobs", { state: "queued" })).toBe(
      metric(m0, "skiff_jobs", { state: "queued" }) + 1,
    );
    expect(metric(m1, "skiff_queue_depth")).toBe(metric(m0, "skiff_queue_depth") + 1);
    expect(metric(m1, "skiff_agents", { status: "idle" })).toBe(
      metric(m0, "skiff_agents", { status: "idle" }) + 1,
    );
    const submits = { method: "POST", route: "/v1/jobs", status: "201" };
    expect(metric(m1, "skiff_http_request_duration_seconds_count", submits)).toBe(1);

    const claim = await t.call("POST", "/v1/agent/claim", {
      token: t.tokens.agent,
      body: { agentId, max: 1 },
    });
    expect(claim.body.jobs).toHaveLength(1);
    const hb = await t.call("POST", "/v1/agent/heartbeat", {
      token: t.tokens.agent,
      body: { agentId, status: "busy", running: [{ jobId: job.body.id, epoch: claim.body.jobs[0].epoch }] },
    });
    expect(hb.status).toBe(200);

    const m2 = await scrape();
    expect(metric(m2, "skiff_jobs", { state: "queued" })).toBe(metric(m0, "skiff_jobs", { state: "queued" }));
    expect(metric(m2, "skiff_jobs", { state: "assigned" })).toBe(
      metric(m0, "skiff_jobs", { state: "assigned" }) + 1,
    );
    expect(metric(m2, "skiff_queue_depth")).toBe(metric(m0, "skiff_queue_depth"));
    expect(metric(m2, "skiff_claim_latency_seconds_count")).toBe(
      metric(m0, "skiff_claim_latency_seconds_count") + 1,
    );
    expect(metric(m2, "skiff_claim_latency_seconds_sum")).toBeGreaterThan(
      metric(m0, "skiff_claim_latency_seconds_sum"),
    );
    expect(metric(m2, "skiff_heartbeats_total")).toBe(metric(m0, "skiff_heartbeats_total") + 1);
    expect(metric(m2, "skiff_agents", { status: "busy" })).toBe(
      metric(m0, "skiff_agents", { status: "busy" }) + 1,
    );
    expect(metric(m2, "skiff_agents", { status: "idle" })).toBe(
      metric(m0, "skiff_agents", { status: "idle" }),
    );
    expect(
      metric(m2, "skiff_http_request_duration_seconds_count", {
        method: "POST",
        route: "/v1/agent/claim",
        status: "200",
      }),
    ).toBe(1);
  });
});
