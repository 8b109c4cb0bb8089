import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allOf,
  createTestDatabase,
  describeWith,
  freePort,
  pgGate,
  redisGate,
  TEST_REDIS_URL,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readSse } from "./harness.ts";

const root = new URL("../../../", import.meta.url).pathname;
const pg = await pgGate();
const redis = await redisGate();
const both = allOf(pg, redis);

interface ApiProcess {
  child: ChildProcess;
  url: string;
  home: string;
  output: () => string;
}

async function startApiProcess(databaseUrl: string, prefix: string): Promise<ApiProcess> {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), "skiff-api-"));
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "apps/cli/src/main.ts", "api", "--port", String(port)],
    {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        REDIS_URL: TEST_REDIS_URL,
        SKIFF_BUS_PREFIX: prefix,
        SKIFF_HOME: home,
        SKIFF_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`skiff api exited ${code} before it was ready:\n${out}`))),
  );
  exited.catch(() => {});
  await Promise.race([
    exited,
    waitFor(
      `skiff api on port ${port} to be ready`,
      async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200,
      30_000,
      100,
    ),
  ]);
  return { child, url, home, output: () => out };
}

function stop(p: ApiProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) return resolve(p.child.exitCode);
    p.child.once("exit", (code) => resolve(code));
    p.child.kill("SIGTERM");
  });
}

describeWith(both, "two API processes on one PostgreSQL and Redis", () => {
  let database: TestDatabase;
  let a: ApiProcess;
  let b: ApiProcess;
  let admin: string;
  beforeAll(async () => {
    database = await createTestDatabase();
    const prefix = `skiff-proc-${randomBytes(4).toString("hex")}`;
    a = await startApiProcess(database.url, prefix);
    b = await startApiProcess(database.url, prefix);
    admin = readFileSync(join(a.home, "admin.token"), "utf8").trim();
  });
  afterAll(async () => {
    for (const p of [a, b]) if (p) rmSync(p.home, { recursive: true, force: true });
    await database?.drop();
  });

  async function call(base: string, method: string, path: string, token: string, body?: unknown) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  it("a job submitted on one process wakes a claim long-polling on the other, and its events fan out", async () => {
    expect(admin).toMatch(/^skf_/);
    const agentToken = (await call(a.url, "POST", "/v1/tokens", admin, { name: "pool", role: "agent" })).body
      .token;
    const agentId = (
      await call(b.url, "POST", "/v1/agent/register", agentToken, {
        name: "cross",
        version: "0.1.0",
        slots: 1,
        labels: { queue: "cross" },
        sandbox: "bwrap",
      })
    ).body.agentId;
    const events = readSse(`${b.url}/v1/events?topics=jobs`, admin, (ev) =>
      ev.some((e) => e.event === "job.created"),
    );
    const claim = call(b.url, "POST", "/v1/agent/claim", agentToken, { agentId, max: 1, waitMs: 25_000 });
    // Submit only once the long-poll is parked on process B, so only the bus can wake it.
    await waitFor("the claim to be parked on B", async () => {
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      return /^skiff_claim_waiters 1$/m.test(metrics);
    });
    const submittedAt = Date.now();
    const job = (
      await call(a.url, "POST", "/v1/jobs", admin, {
        name: "cross",
        queue: "cross",
        steps: [{ name: "s", run: "true" }],
      })
    ).body;
    const claimed = await claim;
    const wokeAfterMs = Date.now() - submittedAt;
    expect(claimed.body.jobs.map((j: { job: { id: string } }) => j.job.id)).toEqual([job.id]);
    expect(wokeAfterMs).toBeLessThan(20_000); // woken by the bus, not by the 25 s timeout
    const seen = await events;
    expect(seen.find((e) => e.event === "job.created")?.data).toMatchObject({
      jobId: job.id,
      queue: "cross",
    });
  });

  it("both processes shut down cleanly on SIGTERM", async () => {
    expect(await stop(a)).toBe(0);
    expect(await stop(b)).toBe(0);
  });
});
