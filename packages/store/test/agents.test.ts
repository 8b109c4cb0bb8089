import { createHash } from "node:crypto";
import { expect, it } from "vitest";
import { alice, spec } from "./fixtures.ts";
import { describeEachAdapter } from "./harness.ts";

const system = { actor: "system", role: "system" };

describeEachAdapter("agents, tokens and fleet", (store) => {
  async function register(name: string, queues = ["default"]) {
    return (
      await store().registerAgent(
        {
          name,
          version: "0.1.0",
          slots: 2,
          labels: { queue: queues.join(",") },
          queues,
          sandbox: "bwrap",
          resources: {},
          tokenId: null,
        },
        { actor: "agent", role: "agent" },
      )
    ).value;
  }

  it("registers an agent, records heartbeats and lists it with its running jobs", async () => {
    const agent = await register("w1", ["q-agents"]);
    expect(agent).toMatchObject({
      status: "online",
      activity: "idle",
      slots: 2,
      unsafe: false,
      runningJobs: [],
    });
    const job = (await store().submitJob(spec({ queue: "q-agents" }), alice)).value;
    const [claim] = await store().claimJobs(agent.id, agent.queues, 2);
    const hb = await store().heartbeat({
      agentId: agent.id,
      activity: "busy",
      resources: { cpuPercent: 12 },
      running: [{ jobId: job.id, epoch: claim?.epoch ?? -1 }],
    });
    expect(hb).toMatchObject({
      status: "online",
      previousActivity: "idle",
      drainRequested: false,
      cancels: [],
    });
    const listed = (await store().listAgents()).find((a) => a.id === agent.id);
    expect(listed).toMatchObject({ activity: "busy", runningJobs: [job.id], resources: { cpuPercent: 12 } });
  });

  it("answers a heartbeat with cancel for canceled jobs and leases it no longer holds, and drain when asked", async () => {
    const agent = await register("w2", ["q-hb"]);
    const job = (await store().submitJob(spec({ queue: "q-hb" }), alice)).value;
    const [claim] = await store().claimJobs(agent.id, agent.queues, 1);
    await store().cancelJob(job.id, "operator said so", alice);
    const hb = await store().heartbeat({
      agentId: agent.id,
      activity: "busy",
      resources: {},
      running: [
        { jobId: job.id, epoch: claim?.epoch ?? -1 },
        { jobId: "job_gone", epoch: 3 },
      ],
    });
    expect(hb?.cancels).toEqual([
      { jobId: job.id, epoch: claim?.epoch, reason: "operator said so" },
      { jobId: "job_gone", epoch: 3, reason: "lease_lost" },
    ]);
    const drained = await store().drainAgent(agent.id, "maintenance", alice);
    expect(drained.value?.drainRequested).toBe(true);
    expect(drained.audit[0]).toMatchObject({ action: "agent.drain", target: agent.id });
    expect(
      (await store().heartbeat({ agentId: agent.id, activity: "draining", resources: {}, running: [] }))
        ?.drainRequested,
    ).toBe(true);
  });

  it("deregistering requeues what the agent still held", async () => {
    const agent = await register("w3", ["q-dereg"]);
    const job = (await store().submitJob(spec({ queue: "q-dereg" }), alice)).value;
    await store().claimJobs(agent.id, agent.queues, 1);
    const res = await store().deregisterAgent(agent.id, { actor: agent.name, role: "agent" });
    expect(res.value.requeue.requeued.map((j) => j.id)).toEqual([job.id]);
    expect((await store().getAgent(agent.id))?.status).toBe("offline");
    expect((await store().getJob(job.id))?.state).toBe("queued");
    // The log says where attempt 1 ended and why, between its lines and attempt 2's.
    expect(await store().listLogs(job.id, 0, 10)).toMatchObject([
      {
        seq: 1_000_000_000,
        step: null,
        stream: "system",
        text: `--- attempt 1 of ${job.maxAttempts} interrupted: its worker deregistered (w3); attempt 2 queued`,
      },
    ]);
  });

  it("job history: finished and succeeded per bucket, and the queue's depth at each bucket's end", async () => {
    const totals = async () => {
      const h = await store().jobHistory(5, 720);
      expect(h).toHaveLength(720);
      expect(Date.parse(h[1]?.at ?? "") - Date.parse(h[0]?.at ?? "")).toBe(5_000);
      return {
        finished: h.reduce((n, b) => n + b.finished, 0),
        succeeded: h.reduce((n, b) => n + b.succeeded, 0),
        queued: h.at(-1)?.queued ?? 0,
      };
    };
    const before = await totals();
    const agent = await register("w-hist", ["q-hist"]);
    for (let i = 0; i < 3; i++) await store().submitJob(spec({ queue: "q-hist", name: `hist-${i}` }), alice);
    const claims = await store().claimJobs(agent.id, agent.queues, 2);
    expect(claims).toHaveLength(2);
    const [ok, bad] = claims;
    if (!ok || !bad) throw new Error("two claims");
    await store().finishJobs([
      { jobId: ok.job.id, agentId: agent.id, epoch: ok.epoch, outcome: "succeeded", exitCode: 0 },
      { jobId: bad.job.id, agentId: agent.id, epoch: bad.epoch, outcome: "failed", exitCode: 1 },
    ]);
    const after = await totals();
    expect({
      finished: after.finished - before.finished,
      succeeded: after.succeeded - before.succeeded,
      queued: after.queued - before.queued,
    }).toEqual({ finished: 2, succeeded: 1, queued: 1 });
  });

  it("job counts: every state and every queue's queued jobs over the whole table, not a page", async () => {
    const before = { states: await store().countJobsByState(), queued: await store().countQueuedByQueue() };
    const agent = await register("w-counts", ["q-counts-a"]);
    for (let i = 0; i < 3; i++)
      await store().submitJob(spec({ queue: "q-counts-a", name: `ca-${i}` }), alice);
    for (let i = 0; i < 2; i++)
      await store().submitJob(spec({ queue: "q-counts-b", name: `cb-${i}` }), alice);
    const [claim] = await store().claimJobs(agent.id, agent.queues, 1);
    if (!claim) throw new Error("one claim");
    const states = await store().countJobsByState();
    const queued = await store().countQueuedByQueue();
    expect(states.queued - before.states.queued).toBe(4);
    expect(states.assigned - before.states.assigned).toBe(1);
    expect(queued["q-counts-a"]).toBe((before.queued["q-counts-a"] ?? 0) + 2);
    expect(queued["q-counts-b"]).toBe((before.queued["q-counts-b"] ?? 0) + 2);
    // A queue with nothing waiting is absent, not zero.
    await store().cancelJob(claim.job.id, "done with it", alice);
    expect(Object.values(await store().countQueuedByQueue()).every((n) => n > 0)).toBe(true);
  });

  it("a job lost with its last attempt fails with agent_lost, and its log says so", async () => {
    const agent = await register("w3b", ["q-last"]);
    const job = (await store().submitJob(spec({ queue: "q-last", maxAttempts: 1 }), alice)).value;
    await store().claimJobs(agent.id, agent.queues, 1);
    const res = await store().deregisterAgent(agent.id, { actor: agent.name, role: "agent" });
    expect(res.value.requeue.failed.map((j) => j.id)).toEqual([job.id]);
    expect(await store().getJob(job.id)).toMatchObject({ state: "failed", error: "agent_lost" });
    expect((await store().listLogs(job.id, 0, 10)).map((l) => [l.seq, l.text])).toEqual([
      [
        1_000_000_000,
        "--- attempt 1 of 1 interrupted: its worker deregistered (w3b); no attempts left: failed (agent_lost)",
      ],
    ]);
  });

  it("stores tokens by hash, finds live ones, and revocation takes effect at once", async () => {
    const hash = createHash("sha256").update("secret-token").digest("hex");
    const { value: token, audit } = await store().createToken({ name: "ci", role: "operator", hash }, system);
    expect(audit[0]).toMatchObject({ action: "token.create", target: token.id });
    expect((await store().findTokenByHash(hash))?.id).toBe(token.id);
    expect(JSON.stringify(await store().listTokens())).not.toContain(hash);
    await store().revokeToken(token.id, system);
    expect(await store().findTokenByHash(hash)).toBeNull();
  });

  it("updates fleet settings with an audit of before and after, and fences a deposed controller", async () => {
    const after = await store().updateFleet({ mode: "auto", min: 1, max: 4, warm: 1 }, alice);
    expect(after.value).toMatchObject({ mode: "auto", min: 1, max: 4, warm: 1, updatedBy: "alice" });
    expect(after.audit[0]?.details).toMatchObject({ after: { mode: "auto", min: 1, max: 4, warm: 1 } });
    const first = (await store().takeLeadership("ctl-a")).value;
    const second = (await store().takeLeadership("ctl-b")).value;
    expect(second.epoch).toBe(first.epoch + 1);
    expect(
      await store().recordDecision({
        leaderEpoch: first.epoch,
        desired: 3,
        actual: 1,
        reason: "late",
        inputs: {},
      }),
    ).toBe(false);
    expect(
      await store().recordDecision({
        leaderEpoch: second.epoch,
        desired: 2,
        actual: 1,
        reason: "queue",
        inputs: { queued: 3 },
      }),
    ).toBe(true);
    expect((await store().recentDecisions(5)).map((d) => d.reason)).toEqual(["queue"]);
    expect((await store().getFleet()).leaderEpoch).toBe(second.epoch);
  });
});

describeEachAdapter("the reaper forgets long-offline agents", (store) => {
  const register = async (name: string) =>
    (
      await store().registerAgent(
        {
          name,
          version: "0.1.0",
          slots: 1,
          labels: { queue: "q-prune" },
          queues: ["q-prune"],
          sandbox: "bwrap",
          resources: {},
          tokenId: null,
        },
        { actor: "agent", role: "agent" },
      )
    ).value;
  const silence = (id: string, seconds: number) =>
    store().db.query(
      "update agents set last_heartbeat_at = now() - make_interval(secs => $2) where id = $1",
      [id, seconds],
    );
  const reap = (agentRetentionSeconds?: number) =>
    store().reap({
      offlineAfterMs: 30_000,
      timeoutGraceSeconds: 30,
      logRetentionSeconds: 3600,
      agentRetentionSeconds,
    });

  it("removes an agent offline past the retention, keeps a recent one and one that still holds a job", async () => {
    const old = await register("gone-long-ago");
    const recent = await register("gone-a-minute-ago");
    const holding = await register("gone-with-a-job");
    await store().submitJob(spec({ queue: "q-prune", maxAttempts: 1 }), alice);
    await store().claimJobs(holding.id, ["q-prune"], 1);
    await silence(old.id, 3 * 24 * 3600);
    await silence(recent.id, 60);
    await silence(holding.id, 3 * 24 * 3600);
    // Without a retention the reaper only marks them offline.
    const first = await reap();
    expect(first.value.agentsPruned).toBe(0);
    await store().db.query("update jobs set state = 'running', agent_id = $1 where queue = 'q-prune'", [
      holding.id,
    ]);
    await store().db.query("update agents set status = 'offline' where id = $1", [holding.id]);
    const second = await reap(24 * 3600);
    expect(second.value.agentsPruned).toBe(1);
    const left = (
      await store().db.query<{ id: string }>("select id from agents where id = any($1)", [
        [old.id, recent.id, holding.id],
      ])
    ).rows.map((r) => r.id);
    expect(left.sort()).toEqual([recent.id, holding.id].sort());
  });
});
