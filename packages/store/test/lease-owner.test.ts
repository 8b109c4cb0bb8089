import { expect, it } from "vitest";
import { alice, spec } from "./fixtures.ts";
import { describeEachAdapter } from "./harness.ts";

describeEachAdapter("the lease belongs to one agent", (store) => {
  it("another agent at the holder's epoch is refused events and finish, and nothing is stored", async () => {
    const job = (await store().submitJob(spec({ queue: "q-owner" }), alice)).value;
    const [claim] = await store().claimJobs("agent-holder", ["q-owner"], 1);
    if (!claim) throw new Error("nothing claimed");
    const before = await store().getJob(job.id);
    expect(before).toMatchObject({ state: "assigned", agentId: "agent-holder", epoch: claim.epoch });

    const events = await store().appendEvents({
      jobId: job.id,
      agentId: "agent-intruder",
      epoch: claim.epoch,
      events: [
        { type: "step.started", step: 0 },
        { type: "log", seq: 1, step: 0, stream: "stdout", text: "not your job" },
        { type: "step.finished", step: 0, outcome: "failed", exitCode: 3 },
      ],
      logCapBytes: 1 << 20,
    });
    expect(events).toMatchObject({ ok: false, reason: "lease_lost" });
    const finish = await store().finishJob({
      jobId: job.id,
      agentId: "agent-intruder",
      epoch: claim.epoch,
      outcome: "failed",
      exitCode: 3,
      error: "hijacked",
    });
    expect(finish).toMatchObject({ ok: false, reason: "lease_lost" });

    expect(await store().listLogs(job.id, 0, 10)).toEqual([]);
    expect(await store().getJob(job.id)).toEqual(before);
  });
});
