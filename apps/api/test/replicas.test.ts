import { allOf, describeWith, pgGate, redisGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hello, openSse, registerAgent, type SseClient, startReplicaPair, type TestApi } from "./harness.ts";

const pg = await pgGate();
const redis = await redisGate();
const both = allOf(pg, redis);

describeWith(both, "two API replicas on one database and the Redis bus [pg, redis]", () => {
  let pair: Awaited<ReturnType<typeof startReplicaPair>> | undefined;
  let a: TestApi;
  let b: TestApi;
  const streams: SseClient[] = [];

  beforeAll(async () => {
    pair = await startReplicaPair("replicas");
    ({ a, b } = pair);
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await pair?.close();
  });

  it("a claim long-polling on B is woken by a job submitted on A", async () => {
    const agentId = await registerAgent(b, "poller-b", { queue: "cross" });
    const claim = b.call("POST", "/v1/agent/claim", {
      token: b.tokens.agent,
      body: { agentId, max: 1, waitMs: 20_000 },
    });
    await waitFor("the claim to wait on B", () => b.api.ctx.waiters.size > 0);
    const submittedAt = Date.now();
    const job = await a.call("POST", "/v1/jobs", { token: a.tokens.operator, body: hello("cross") });
    expect(job.status).toBe(201);

    const res = await claim;
    expect(res.status).toBe(200);
    expect(res.body.jobs).toMatchObject([{ epoch: 1, job: { id: job.body.id, state: "assigned", agentId } }]);
    // Woken through Redis, not at the end of its 20 s wait.
    expect(Date.now() - submittedAt).toBeLessThan(5_000);
  });

  it("an event raised on A reaches an SSE client of B", async () => {
    const events = await openSse(`${b.url}/v1/events?topics=jobs`, b.tokens.viewer);
    streams.push(events);
    expect(events.status).toBe(200);
    await events.waitUntil("ready", (c) => c.events.some((e) => e.event === "ready"));

    const job = (await a.call("POST", "/v1/jobs", { token: a.tokens.operator, body: hello("seen-on-b") }))
      .body;
    await events.waitUntil("job.created from A", (c) =>
      c.events.some((e) => e.event === "job.created" && e.data.jobId === job.id),
    );
    expect(events.events.find((e) => e.data.jobId === job.id)).toMatchObject({
      event: "job.created",
      data: { jobId: job.id, name: "hello", queue: "seen-on-b" },
    });
  });

  it("a live log follower on B gets the lines uploaded through A, then the end", async () => {
    const agentId = await registerAgent(a, "runner-a", { queue: "logs-across" });
    const job = (await a.call("POST", "/v1/jobs", { token: a.tokens.operator, body: hello("logs-across") }))
      .body;
    const claim = await a.call("POST", "/v1/agent/claim", {
      token: a.tokens.agent,
      body: { agentId, max: 1 },
    });
    const epoch = claim.body.jobs[0].epoch;
    const upload = (events: unknown[]) =>
      a.call("POST", `/v1/agent/jobs/${job.id}/events`, {
        token: a.tokens.agent,
        body: { agentId, epoch, events },
      });

    const open = b.api.ctx.sse.size;
    const follower = await openSse(`${b.url}/v1/jobs/${job.id}/logs/stream`, b.tokens.viewer);
    streams.push(follower);
    expect(follower.status).toBe(200);
    await waitFor("the follower to be open on B", () => b.api.ctx.sse.size > open);

    expect(
      (
        await upload([
          { type: "step.started", step: 0 },
          { type: "log", seq: 1, step: 0, stream: "stdout", text: "building on a" },
        ])
      ).status,
    ).toBe(200);
    // Live: the line is on B while the job still runs.
    await follower.waitUntil("line 1", (c) => c.events.some((e) => e.event === "line" && e.data.seq === 1));
    expect((await b.call("GET", `/v1/jobs/${job.id}`, { token: b.tokens.viewer })).body.state).toBe(
      "running",
    );

    await upload([
      { type: "log", seq: 2, step: 0, stream: "stderr", text: "done" },
      { type: "step.finished", step: 0, outcome: "succeeded", exitCode: 0 },
    ]);
    const fin = await a.call("POST", `/v1/agent/jobs/${job.id}/finish`, {
      token: a.tokens.agent,
      body: { agentId, epoch, outcome: "succeeded", exitCode: 0 },
    });
    expect(fin.status).toBe(200);
    expect(await follower.closed).toBe("end");
    expect(follower.events.filter((e) => e.event === "line").map((e) => [e.data.seq, e.data.text])).toEqual([
      [1, "building on a"],
      [2, "done"],
    ]);
    expect(follower.events.at(-1)).toMatchObject({ event: "end", data: { state: "succeeded", exitCode: 0 } });
  });
});
