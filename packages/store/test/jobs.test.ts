import { describe, expect, it } from "vitest";
import { alice, spec } from "./fixtures.ts";
import { describeEachAdapter } from "./harness.ts";

describeEachAdapter("jobs", (store) => {
  it("submits a job with its steps pending and audits the submit in the same transaction", async () => {
    const { value: job, audit } = await store().submitJob(spec({ queue: "q-submit" }), alice);
    expect(job.state).toBe("queued");
    expect(job.epoch).toBe(0);
    expect(job.queue).toBe("q-submit");
    const full = await store().getJob(job.id);
    expect(full?.steps.map((s) => [s.name, s.state])).toEqual([
      ["one", "pending"],
      ["two", "pending"],
    ]);
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: "job.submit", target: job.id, actor: "alice", outcome: "ok" });
  });

  it("lists newest first, filters by state, queue and text, and pages with a keyset cursor", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await store().submitJob(spec({ name: `page-${i}`, queue: "q-list" }), alice)).value.id);
    }
    const first = await store().listJobs({ queue: "q-list", limit: 3 });
    expect(first.map((j) => j.name)).toEqual(["page-4", "page-3", "page-2"]);
    const last = first.at(-1);
    if (!last) throw new Error("empty page");
    const second = await store().listJobs({
      queue: "q-list",
      limit: 3,
      before: { createdAt: last.createdAt, id: last.id },
    });
    expect(second.map((j) => j.name)).toEqual(["page-1", "page-0"]);
    expect((await store().listJobs({ text: "PAGE-3", limit: 10 })).map((j) => j.name)).toEqual(["page-3"]);
    expect(await store().listJobs({ queue: "q-list", state: "running", limit: 10 })).toEqual([]);
    expect(await store().listJobs({ text: "%", queue: "q-list", limit: 10 })).toEqual([]);
  });

  it("claims only jobs of the queues the agent serves, oldest first, bumping epoch and attempt", async () => {
    const a = (await store().submitJob(spec({ queue: "q-claim-a" }), alice)).value;
    const b = (await store().submitJob(spec({ queue: "q-claim-b" }), alice)).value;
    expect(await store().claimJobs("agent-x", ["q-claim-c"], 5)).toEqual([]);
    const claimed = await store().claimJobs("agent-x", ["q-claim-b"], 5);
    expect(claimed.map((c) => c.job.id)).toEqual([b.id]);
    expect(claimed[0]).toMatchObject({ epoch: 1, attempt: 1 });
    expect(claimed[0]?.job).toMatchObject({ state: "assigned", agentId: "agent-x" });
    expect(await store().claimJobs("agent-y", ["q-claim-b"], 5)).toEqual([]);
    const other = await store().claimJobs("agent-y", ["q-claim-a", "q-claim-b"], 5);
    expect(other.map((c) => c.job.id)).toEqual([a.id]);
  });

  it("takes the oldest jobs across several queues, at most max, leaving the rest queued", async () => {
    const ids: string[] = [];
    for (const queue of ["q-multi-a", "q-multi-b", "q-multi-a", "q-multi-b", "q-multi-a"])
      ids.push((await store().submitJob(spec({ queue }), alice)).value.id);
    const first = await store().claimJobs("agent-m", ["q-multi-b", "q-multi-a"], 3);
    expect(first.map((c) => c.job.id)).toEqual(ids.slice(0, 3));
    const rest = await store().claimJobs("agent-n", ["q-multi-a", "q-multi-b"], 5);
    expect(rest.map((c) => c.job.id)).toEqual(ids.slice(3));
  });

  it("cancels a queued job at once and a running job through canceling; a final job refuses", async () => {
    const queued = (await store().submitJob(spec({ queue: "q-cancel" }), alice)).value;
    const res = await store().cancelJob(queued.id, "not needed", alice);
    expect(res.value).toMatchObject({
      ok: true,
      changed: true,
      job: { state: "canceled", cancelReason: "not needed" },
    });
    expect(res.audit[0]).toMatchObject({ action: "job.cancel", target: queued.id });
    const again = await store().cancelJob(queued.id, "twice", alice);
    expect(again.value).toMatchObject({ ok: false, reason: "invalid_transition" });
    expect(again.audit).toEqual([]);

    const running = (await store().submitJob(spec({ queue: "q-cancel" }), alice)).value;
    const [claim] = await store().claimJobs("agent-c", ["q-cancel"], 1);
    if (!claim) throw new Error("no claim");
    const c = await store().cancelJob(running.id, "stop", alice);
    expect(c.value).toMatchObject({ ok: true, job: { state: "canceling" } });
    const hb = await store().heartbeat({ agentId: "agent-c", activity: "busy", resources: {}, running: [] });
    expect(hb).toBeNull(); // not a registered agent
    const ev = await store().appendEvents({
      jobId: running.id,
      agentId: "agent-c",
      epoch: claim.epoch,
      events: [],
      logCapBytes: 1000,
    });
    expect(ev).toMatchObject({ ok: true, cancel: true });
    const fin = await store().finishJob({
      jobId: running.id,
      agentId: "agent-c",
      epoch: claim.epoch,
      outcome: "canceled",
      exitCode: null,
    });
    expect(fin).toMatchObject({ ok: true, job: { state: "canceled" } });
    expect((await store().cancelJob("job_missing", "x", alice)).value).toMatchObject({
      ok: false,
      reason: "not_found",
    });
  });

  it("retries a finished job as a new job that names the one it retries", async () => {
    const job = (await store().submitJob(spec({ queue: "q-retry" }), alice)).value;
    expect((await store().retryJob(job.id, alice)).value).toMatchObject({
      ok: false,
      reason: "invalid_transition",
    });
    await store().cancelJob(job.id, "done", alice);
    const res = await store().retryJob(job.id, alice);
    if (!res.value.ok) throw new Error("retry refused");
    expect(res.value.job).toMatchObject({ state: "queued", retryOf: job.id, name: job.name });
    expect(res.audit[0]).toMatchObject({
      action: "job.retry",
      target: job.id,
      details: { newJobId: res.value.job.id },
    });
  });
});

describe("job ids", () => {
  it("are unique and sort by creation time", async () => {
    const { newId } = await import("../src/index.ts");
    const a = newId("job");
    await new Promise((r) => setTimeout(r, 2));
    const b = newId("job");
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newId("job"))).size).toBe(1000);
  });
});
