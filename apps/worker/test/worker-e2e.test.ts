import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describeWith, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningWorker } from "../src/index.ts";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

describeWith(bwrapGate(), "worker end to end [bwrap, pglite]", () => {
  let stack: Stack;
  let worker: RunningWorker;
  let workRoot: string;
  const call = (method: string, path: string, body?: unknown) => stack.call(method, path, body);
  const submit = (spec: Record<string, unknown>) => stack.submit(spec);
  const final = (id: string) => stack.final(id);
  const logs = (id: string) => stack.logs(id);

  beforeAll(async () => {
    stack = await startStack({ queue: "e2e", name: "e2e-worker" });
    worker = stack.worker;
    workRoot = stack.workRoot;
  });
  afterAll(async () => {
    await stack?.close();
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

  it("a step that fills its disk fails with the disk limit, even when it ignores the write error", async () => {
    const job = await submit({
      name: "fill",
      resources: { diskMb: 100 },
      steps: [
        { name: "fill", run: "dd if=/dev/zero of=/workspace/f bs=1M count=200 2>/dev/null; true" },
        { name: "never", run: "echo ran" },
      ],
    });
    const done = await final(job.id);
    expect(done.state).toBe("failed");
    expect(done.error).toBe("step fill: disk limit of 100 MiB reached");
    expect(done.steps.map((s: any) => s.state)).toEqual(["failed", "skipped"]);
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
