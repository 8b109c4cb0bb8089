import { expect, it } from "vitest";
import { TRUNCATION_MARKER } from "../src/index.ts";
import { alice, spec } from "./fixtures.ts";
import { describeEachAdapter } from "./harness.ts";

describeEachAdapter("lease fencing", (store) => {
  async function claimed(queue: string, agentId = "agent-l") {
    const job = (await store().submitJob(spec({ queue }), alice)).value;
    const [claim] = await store().claimJobs(agentId, [queue], 1);
    if (!claim) throw new Error("nothing claimed");
    return { job, epoch: claim.epoch, agentId };
  }

  it("moves the job to running on its first event and stores log lines once per seq", async () => {
    const { job, epoch, agentId } = await claimed("q-ev");
    const events = [
      { type: "step.started" as const, step: 0 },
      { type: "log" as const, seq: 1, step: 0, stream: "stdout" as const, text: "hello" },
      { type: "log" as const, seq: 2, step: 0, stream: "stderr" as const, text: "warn" },
    ];
    const first = await store().appendEvents({ jobId: job.id, agentId, epoch, events, logCapBytes: 1 << 20 });
    expect(first).toMatchObject({ ok: true, cancel: false, startedNow: true, job: { state: "running" } });
    if (!first.ok) throw new Error("refused");
    expect(first.lines.map((l) => l.seq)).toEqual([1, 2]);
    const retried = await store().appendEvents({
      jobId: job.id,
      agentId,
      epoch,
      events,
      logCapBytes: 1 << 20,
    });
    expect(retried).toMatchObject({ ok: true, lines: [], startedNow: false });
    const logs = await store().listLogs(job.id, 0, 100);
    expect(logs.map((l) => [l.seq, l.stream, l.text])).toEqual([
      [1, "stdout", "hello"],
      [2, "stderr", "warn"],
    ]);
    expect((await store().getJob(job.id))?.steps[0]).toMatchObject({ state: "running" });
    expect((await store().getJob(job.id))?.logBytes).toBe(9);
  });

  it("refuses events and finish with a stale epoch, changing nothing", async () => {
    const { job, epoch, agentId } = await claimed("q-stale");
    const stale = await store().appendEvents({
      jobId: job.id,
      agentId,
      epoch: epoch - 1,
      events: [{ type: "log", seq: 1, step: 0, stream: "stdout", text: "ghost" }],
      logCapBytes: 1 << 20,
    });
    expect(stale).toMatchObject({ ok: false, reason: "lease_lost" });
    const otherAgent = await store().finishJob({
      jobId: job.id,
      agentId: "intruder",
      epoch,
      outcome: "succeeded",
      exitCode: 0,
    });
    expect(otherAgent).toMatchObject({ ok: false, reason: "lease_lost" });
    const staleFinish = await store().finishJob({
      jobId: job.id,
      agentId,
      epoch: epoch + 1,
      outcome: "failed",
      exitCode: 1,
    });
    expect(staleFinish).toMatchObject({ ok: false, reason: "lease_lost" });
    const after = await store().getJob(job.id);
    expect(after).toMatchObject({ state: "assigned", exitCode: null, epoch });
    expect(await store().listLogs(job.id, 0, 10)).toEqual([]);

    const ok = await store().finishJob({ jobId: job.id, agentId, epoch, outcome: "succeeded", exitCode: 0 });
    expect(ok).toMatchObject({ ok: true, job: { state: "succeeded", exitCode: 0 } });
    const twice = await store().finishJob({ jobId: job.id, agentId, epoch, outcome: "failed", exitCode: 1 });
    expect(twice).toMatchObject({ ok: false, reason: "already_final" });
    expect((await store().getJob(job.id))?.state).toBe("succeeded");
    expect(
      await store().finishJob({ jobId: "job_nope", agentId, epoch, outcome: "failed", exitCode: 1 }),
    ).toMatchObject({
      ok: false,
      reason: "not_found",
    });
  });

  it("a batch of finishes answers each input on its own, a repeated job seeing the first outcome", async () => {
    const a = await claimed("q-batch");
    const b = await claimed("q-batch");
    const c = await claimed("q-batch");
    const results = await store().finishJobs([
      { jobId: a.job.id, agentId: a.agentId, epoch: a.epoch, outcome: "succeeded", exitCode: 0 },
      { jobId: b.job.id, agentId: b.agentId, epoch: b.epoch + 1, outcome: "succeeded", exitCode: 0 },
      { jobId: "job_nope", agentId: a.agentId, epoch: 1, outcome: "failed", exitCode: 1 },
      { jobId: c.job.id, agentId: c.agentId, epoch: c.epoch, outcome: "failed", exitCode: 3, error: "boom" },
      { jobId: a.job.id, agentId: a.agentId, epoch: a.epoch, outcome: "failed", exitCode: 1 },
    ]);
    expect(results.map((r) => (r.ok ? r.job.state : r.reason))).toEqual([
      "succeeded",
      "lease_lost",
      "not_found",
      "failed",
      "already_final",
    ]);
    expect(await store().getJob(a.job.id)).toMatchObject({ state: "succeeded", exitCode: 0 });
    expect(await store().getJob(b.job.id)).toMatchObject({ state: "assigned", exitCode: null });
    const failed = await store().getJob(c.job.id);
    expect(failed).toMatchObject({ state: "failed", exitCode: 3, error: "boom" });
    expect(failed?.steps.every((s) => s.state === "skipped")).toBe(true);
  });

  it("a job requeued after its agent went silent fences the old holder out", async () => {
    const { job, epoch, agentId } = await claimed("q-requeue");
    const { value: agent } = await store().registerAgent(
      {
        name: "silent",
        version: "1",
        slots: 1,
        labels: {},
        queues: ["q-requeue"],
        sandbox: "bwrap",
        resources: {},
        tokenId: null,
      },
      { actor: "agent", role: "agent" },
    );
    // Hand the job to the registered agent so the reaper owns the story end to end.
    await store().finishJob({ jobId: job.id, agentId, epoch, outcome: "failed", exitCode: 1 });
    const retry = (await store().submitJob(spec({ queue: "q-requeue", maxAttempts: 2 }), alice)).value;
    const [c1] = await store().claimJobs(agent.id, ["q-requeue"], 1);
    expect(c1?.job.id).toBe(retry.id);
    await store().db.query("update agents set last_heartbeat_at = now() - interval '1 hour' where id = $1", [
      agent.id,
    ]);
    const reaped = await store().reap({
      offlineAfterMs: 30_000,
      timeoutGraceSeconds: 30,
      logRetentionSeconds: 3600,
    });
    expect(reaped.value.offline).toContain(agent.id);
    expect(reaped.value.requeue.requeued.map((j) => j.id)).toContain(retry.id);
    expect(reaped.audit.some((a) => a.action === "agent.offline" && a.target === agent.id)).toBe(true);
    const late = await store().finishJob({
      jobId: retry.id,
      agentId: agent.id,
      epoch: c1?.epoch ?? 0,
      outcome: "succeeded",
      exitCode: 0,
    });
    expect(late).toMatchObject({ ok: false, reason: "lease_lost" });
    expect((await store().getJob(retry.id))?.state).toBe("queued");

    // Second loss spends the last attempt: the job fails with agent_lost.
    const [c2] = await store().claimJobs(agent.id, ["q-requeue"], 1);
    expect(c2).toMatchObject({ attempt: 2 });
    await store().db.query(
      "update agents set last_heartbeat_at = now() - interval '1 hour', status = 'online' where id = $1",
      [agent.id],
    );
    const again = await store().reap({
      offlineAfterMs: 30_000,
      timeoutGraceSeconds: 30,
      logRetentionSeconds: 3600,
    });
    expect(again.value.requeue.failed.map((j) => j.id)).toEqual([retry.id]);
    expect(await store().getJob(retry.id)).toMatchObject({ state: "failed", error: "agent_lost" });
    // Running the reaper again finds nothing more to do.
    const idle = await store().reap({
      offlineAfterMs: 30_000,
      timeoutGraceSeconds: 30,
      logRetentionSeconds: 3600,
    });
    expect(idle.value.offline).toEqual([]);
    expect(idle.audit).toEqual([]);
  });

  it("caps a job's log with one truncation marker and keeps accepting events", async () => {
    const { job, epoch, agentId } = await claimed("q-cap");
    const line = (seq: number) => ({
      type: "log" as const,
      seq,
      step: 0,
      stream: "stdout" as const,
      text: "x".repeat(40),
    });
    await store().appendEvents({
      jobId: job.id,
      agentId,
      epoch,
      events: [line(1), line(2)],
      logCapBytes: 100,
    });
    const res = await store().appendEvents({
      jobId: job.id,
      agentId,
      epoch,
      events: [line(3), line(4)],
      logCapBytes: 100,
    });
    expect(res.ok).toBe(true);
    await store().appendEvents({ jobId: job.id, agentId, epoch, events: [line(5)], logCapBytes: 100 });
    const logs = await store().listLogs(job.id, 0, 100);
    expect(logs.map((l) => l.seq)).toEqual([1, 2, 3]);
    expect(logs[2]).toMatchObject({ stream: "system", text: TRUNCATION_MARKER });
  });

  it("times out jobs past their timeout as a backstop", async () => {
    const { job } = await claimed("q-timeout");
    await store().db.query(
      "update jobs set assigned_at = now() - interval '2 hours', timeout_seconds = 60 where id = $1",
      [job.id],
    );
    const res = await store().reap({
      offlineAfterMs: 30_000,
      timeoutGraceSeconds: 30,
      logRetentionSeconds: 3600,
    });
    expect(res.value.timedOut.map((j) => j.id)).toEqual([job.id]);
    expect(await store().getJob(job.id)).toMatchObject({ state: "timed_out", error: "timeout" });
  });
});
