import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { describeWith, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningWorker, startWorker } from "../src/index.ts";
import { bwrapGate } from "./support.ts";

const silent = pino({ level: process.env.TEST_LOG ?? "silent" });

describeWith(bwrapGate(), "worker end to end [bwrap, pglite]", () => {
  let store: Store;
  let api: Api;
  let url: string;
  let operator: string;
  let agentToken: string;
  let worker: RunningWorker;
  const workRoot = mkdtempSync(join(tmpdir(), "skiff-work-"));

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operator}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const submit = async (spec: Record<string, unknown>) =>
    (await call("POST", "/v1/jobs", { queue: "e2e", ...spec })).body;
  const final = (id: string, timeoutMs = 30_000) =>
    waitFor(
      `job ${id} to finish`,
      async () => {
        const job = (await call("GET", `/v1/jobs/${id}`)).body;
        return ["succeeded", "failed", "canceled", "timed_out"].includes(job.state) ? job : undefined;
      },
      timeoutMs,
      50,
    );
  const logs = async (id: string) =>
    (await call("GET", `/v1/jobs/${id}/logs?limit=10000`)).body.lines as any[];

  beforeAll(async () => {
    store = await openStore({});
    const bus = await createBus({});
    api = buildApi({
      config: { port: 0, heartbeatIntervalMs: 500, offlineAfterMs: 5_000, reaperIntervalMs: 200 },
      store,
      bus,
      logger: silent,
    });
    url = await api.listen();
    operator = newTokenSecret();
    agentToken = newTokenSecret();
    await store.createToken(
      { name: "olivia", role: "operator", hash: hashToken(operator) },
      { actor: "t", role: "system" },
    );
    await store.createToken(
      { name: "pool", role: "agent", hash: hashToken(agentToken) },
      { actor: "t", role: "system" },
    );
    worker = await startWorker(
      {
        apiUrl: url,
        token: agentToken,
        name: "e2e-worker",
        slots: 2,
        labels: { queue: "e2e" },
        sandbox: "bwrap",
        healthPort: 0,
        workRoot,
        graceMs: 1_000,
        claimWaitMs: 2_000,
        logBatchMs: 50,
      },
      silent,
    );
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.shutdown();
    await store?.close();
    rmSync(workRoot, { recursive: true, force: true });
  });

  it("runs a two-step job in one workspace and streams its output with step markers", async () => {
    const job = await submit({
      name: "two-steps",
      env: { GREETING: "hello" },
      steps: [
        { name: "write", run: 'echo "$GREETING" > msg.txt; echo wrote' },
        { name: "read", run: "cat msg.txt; echo done >&2" },
      ],
    });
    const done = await final(job.id);
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0 });
    expect(done.steps.map((s: any) => [s.name, s.state, s.exitCode])).toEqual([
      ["write", "succeeded", 0],
      ["read", "succeeded", 0],
    ]);
    const lines = await logs(job.id);
    expect(lines.filter((l) => l.stream !== "system").map((l) => [l.step, l.stream, l.text])).toEqual([
      [0, "stdout", "wrote"],
      [1, "stdout", "hello"],
      [1, "stderr", "done"],
    ]);
    expect(lines.some((l) => l.stream === "system" && /sandbox: bwrap/.test(l.text))).toBe(true);
    expect(lines.map((l) => l.seq)).toEqual([...lines.map((l) => l.seq)].sort((a, b) => a - b));
    await waitFor(
      "the workspace to be removed",
      () => readdirSync(join(workRoot, "e2e-worker")).length === 0,
    );
  });

  it("the first failing step fails the job and the rest are skipped", async () => {
    const job = await submit({
      name: "fails",
      steps: [
        { name: "bad", run: "exit 3" },
        { name: "never", run: "echo never" },
      ],
    });
    const done = await final(job.id);
    expect(done).toMatchObject({ state: "failed", exitCode: 3, error: "step bad: exit code 3" });
    expect(done.steps.map((s: any) => s.state)).toEqual(["failed", "skipped"]);
  });

  it("masks secret values before they leave the worker", async () => {
    process.env.SKIFF_TEST_SECRET = "s3cr3t-value-42";
    const job = await submit({
      name: "secret",
      secrets: ["SKIFF_TEST_SECRET"],
      steps: [{ name: "leak", run: 'echo "token is $SKIFF_TEST_SECRET"' }],
    });
    await final(job.id);
    const text = (await logs(job.id)).map((l) => l.text).join("\n");
    expect(text).toContain("token is ***");
    expect(text).not.toContain("s3cr3t-value-42");
  });

  it("a cancel during a running step ends it within the grace period; the job is canceled with the reason", async () => {
    const job = await submit({ name: "long", steps: [{ name: "sleep", run: "echo started; sleep 600" }] });
    await waitFor("the step to start", async () => (await logs(job.id)).some((l) => l.text === "started"));
    const canceledAt = Date.now();
    expect((await call("POST", `/v1/jobs/${job.id}/cancel`, { reason: "wrong branch" })).status).toBe(200);
    const done = await final(job.id);
    expect(done).toMatchObject({ state: "canceled", cancelReason: "wrong branch" });
    expect(Date.now() - canceledAt).toBeLessThan(15_000);
  });

  it("a step past its timeout is killed and the job is timed_out", async () => {
    const job = await submit({
      name: "slow",
      steps: [{ name: "sleep", run: "sleep 600", timeoutSeconds: 1 }],
    });
    const done = await final(job.id);
    expect(done.state).toBe("timed_out");
    expect(done.steps[0].state).toBe("timed_out");
  });

  it("reports healthy and ready on its health port, with metrics", async () => {
    expect(worker.healthUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${worker.healthUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${worker.healthUrl}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${worker.healthUrl}/metrics`)).text();
    expect(metrics).toMatch(/skiff_worker_jobs_total\{outcome="succeeded"\} [1-9]/);
    expect(existsSync(workRoot)).toBe(true);
  });

  it("drain: a running job finishes, no new job is taken, then the agent deregisters", async () => {
    const running = await submit({
      name: "drain-me",
      steps: [{ name: "s", run: "echo go; sleep 2; echo finished" }],
    });
    await waitFor("the job to start", async () => (await logs(running.id)).some((l) => l.text === "go"));
    const agentId = worker.agent.id;
    expect((await call("POST", `/v1/agents/${agentId}/drain`, { reason: "maintenance" })).status).toBe(200);
    await waitFor(
      "the worker to start draining",
      () => worker.agent.state === "draining" || worker.agent.state === "stopped",
      10_000,
    );
    const later = await submit({ name: "after-drain", steps: [{ name: "s", run: "true" }] });
    expect((await final(running.id)).state).toBe("succeeded");
    await worker.agent.stopped;
    expect((await fetch(`${worker.healthUrl}/readyz`)).status).toBe(503);
    expect((await call("GET", `/v1/jobs/${later.id}`)).body.state).toBe("queued");
    expect((await call("GET", `/v1/agents/${agentId}`)).body.status).toBe("offline");
  });
});
