import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createToken, hello, registerAgent, startTestApi, type TestApi } from "./harness.ts";

/**
 * The lease is agent and epoch together. Agents of one pool share a token, so the token check
 * cannot tell them apart: another agent of the pool that learns (or guesses) the epoch must still
 * be fenced out of a job it was never given.
 */
describeWith(await pgGate(), "a job's lease belongs to the agent that claimed it [pg]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function claimedBy(queue: string) {
    const holder = await registerAgent(t, `${queue}-holder`, { queue });
    const job = await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) });
    expect(job.status).toBe(201);
    const claim = await t.call("POST", "/v1/agent/claim", {
      token: t.tokens.agent,
      body: { agentId: holder, max: 1 },
    });
    expect(claim.body.jobs.map((c: { job: { id: string } }) => c.job.id)).toEqual([job.body.id]);
    return { holder, jobId: job.body.id as string, epoch: claim.body.jobs[0].epoch as number };
  }

  const view = async (jobId: string) =>
    (await t.call("GET", `/v1/jobs/${jobId}`, { token: t.tokens.viewer })).body;
  const logs = async (jobId: string) =>
    (await t.call("GET", `/v1/jobs/${jobId}/logs`, { token: t.tokens.viewer })).body.lines;

  it("another agent of the same pool at the right epoch gets 409 lease_lost for events and finish, and nothing is stored", async () => {
    const { holder, jobId, epoch } = await claimedBy("owned");
    // Same pool token, its own agent id, a queue that never receives this job.
    const intruder = await registerAgent(t, "intruder", { queue: "elsewhere" });
    const before = await view(jobId);
    expect(before).toMatchObject({ state: "assigned", agentId: holder, epoch, exitCode: null });

    const events = await t.call("POST", `/v1/agent/jobs/${jobId}/events`, {
      token: t.tokens.agent,
      body: {
        agentId: intruder,
        epoch,
        events: [
          { type: "step.started", step: 0 },
          { type: "log", seq: 1, step: 0, stream: "stdout", text: "not your job" },
          { type: "step.finished", step: 0, outcome: "failed", exitCode: 3 },
        ],
      },
    });
    expect(events).toMatchObject({ status: 409, body: { error: { code: "lease_lost" } } });

    const finish = await t.call("POST", `/v1/agent/jobs/${jobId}/finish`, {
      token: t.tokens.agent,
      body: { agentId: intruder, epoch, outcome: "failed", exitCode: 3, error: "hijacked" },
    });
    expect(finish).toMatchObject({ status: 409, body: { error: { code: "lease_lost" } } });

    expect(await logs(jobId)).toEqual([]);
    const after = await view(jobId);
    expect(after).toEqual(before);
    expect(after.steps.map((s: { state: string }) => s.state)).toEqual(["pending"]);

    // The holder's own calls at that epoch still go through: the refusal was about who, not when.
    const own = await t.call("POST", `/v1/agent/jobs/${jobId}/events`, {
      token: t.tokens.agent,
      body: {
        agentId: holder,
        epoch,
        events: [{ type: "log", seq: 1, step: 0, stream: "stdout", text: "mine" }],
      },
    });
    expect(own).toMatchObject({ status: 200, body: { accepted: 1 } });
    const done = await t.call("POST", `/v1/agent/jobs/${jobId}/finish`, {
      token: t.tokens.agent,
      body: { agentId: holder, epoch, outcome: "succeeded", exitCode: 0 },
    });
    expect(done).toMatchObject({ status: 200, body: { job: { state: "succeeded", exitCode: 0 } } });
    expect((await logs(jobId)).map((l: { text: string }) => l.text)).toEqual(["mine"]);
  });

  it("an agent of another pool cannot speak for the holder: 403, and nothing is stored", async () => {
    const { holder, jobId, epoch } = await claimedBy("pooled");
    const otherPool = await createToken(t.store, "agent", "other-pool");
    const before = await view(jobId);
    const events = await t.call("POST", `/v1/agent/jobs/${jobId}/events`, {
      token: otherPool,
      body: {
        agentId: holder,
        epoch,
        events: [{ type: "log", seq: 1, step: 0, stream: "stdout", text: "not your agent" }],
      },
    });
    expect(events).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    const finish = await t.call("POST", `/v1/agent/jobs/${jobId}/finish`, {
      token: otherPool,
      body: { agentId: holder, epoch, outcome: "failed", exitCode: 1 },
    });
    expect(finish).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    expect(await logs(jobId)).toEqual([]);
    expect(await view(jobId)).toEqual(before);
  });
});
