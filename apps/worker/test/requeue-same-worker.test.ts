import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describeWith, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

/**
 * A job taken back from a worker (its lease bumped, as the reaper does for a silent agent) and
 * claimed again by the same worker while the lost attempt is still running: two runs of one job.
 * The lost one's cleanup must not forget the new one, or the worker loses count of its slots.
 */
describeWith(bwrapGate(), "a job requeued to the worker that lost it [bwrap, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ queue: "again", slots: 2, drainTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const leaseLost = async () => {
    const text = await (await fetch(`${stack.worker.healthUrl}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith('skiff_worker_jobs_total{outcome="lease_lost"}'));
    return Number(line?.split(" ").at(-1) ?? 0);
  };

  it("keeps counting the new attempt after the lost one ends", async () => {
    const job = await stack.submit({ name: "long", steps: [{ name: "s", run: "echo up; sleep 600" }] });
    await waitFor("attempt 1 to run", async () => (await stack.logs(job.id)).some((l) => l.text === "up"));
    const lostBefore = await leaseLost();
    // What the reaper does to a silent agent's job: back to the queue, with the epoch bumped.
    await stack.store.db.query(
      "update jobs set state = 'queued', agent_id = null, assigned_at = null, started_at = null, epoch = epoch + 1 where id = $1",
      [job.id],
    );
    // Wake the worker's claim at once, so attempt 2 starts while attempt 1 is still alive.
    await stack.api.ctx.bus.wake("again");
    await waitFor("the same worker to claim attempt 2", async () => {
      const j = (await stack.call("GET", `/v1/jobs/${job.id}`)).body;
      return j.attempt === 2 && ["assigned", "running"].includes(j.state) ? j : undefined;
    });
    await waitFor(
      "the lost attempt to be stopped",
      async () => (await leaseLost()) === lostBefore + 1,
      20_000,
    );
    const own = join(stack.workRoot, "test-again");
    const workspaces = () => readdirSync(own).filter((f) => f.startsWith(job.id) && !f.endsWith(".img"));
    await waitFor("the lost attempt's workspace to be removed", async () => workspaces().length === 1);
    expect(stack.worker.agent.running).toEqual([job.id]);

    // One slot is left. Two more jobs: one runs, the other waits (the bug ran both: three on two).
    const more = [
      await stack.submit({ name: "b", steps: [{ name: "s", run: "sleep 600" }] }),
      await stack.submit({ name: "c", steps: [{ name: "s", run: "sleep 600" }] }),
    ];
    await waitFor("one of them to run", async () => {
      const states = await Promise.all(
        more.map(async (m) => (await stack.call("GET", `/v1/jobs/${m.id}`)).body.state),
      );
      return states.includes("running");
    });
    await new Promise((r) => setTimeout(r, 2_500)); // two claim polls of the worker
    const states = await Promise.all(
      more.map(async (m) => (await stack.call("GET", `/v1/jobs/${m.id}`)).body.state),
    );
    expect(states.sort()).toEqual(["queued", "running"]);
    expect(stack.worker.agent.running).toHaveLength(2);
    for (const m of [job, ...more])
      await stack.call("POST", `/v1/jobs/${m.id}/cancel`, { reason: "done testing" });
    await stack.final(job.id);
  });
});

// Without a sandbox, so that the step's own `trap` decides what SIGTERM does (a bwrap sandbox dies
// with its bwrap process on the first signal, which would hide the grace period).
describe("a job whose lease is lost is killed at once [no sandbox, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    // A long grace period: a cancel would wait for it, a lost lease must not.
    stack = await startStack({
      queue: "lost",
      name: "lost-worker",
      unsafeNoSandbox: true,
      graceMs: 120_000,
      drainTimeoutMs: 2_000,
    });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("a step that ignores SIGTERM is killed without its grace period once another attempt owns the job", async () => {
    const job = await stack.submit({
      name: "stubborn",
      steps: [{ name: "s", run: 'trap "" TERM; echo up; while :; do echo tick; sleep 0.2; done' }],
    });
    await waitFor("the step to run", async () => (await stack.logs(job.id)).some((l) => l.text === "up"));
    // The job is taken from this worker (as the reaper does) and, to keep the test to one attempt,
    // settled as canceled: the worker's next upload is refused and its lease is gone.
    await stack.store.db.query(
      "update jobs set state = 'canceled', finished_at = now(), epoch = epoch + 1 where id = $1",
      [job.id],
    );
    const own = join(stack.workRoot, "lost-worker");
    const workspaces = () => readdirSync(own).filter((f) => f.startsWith(job.id) && !f.endsWith(".img"));
    // Killed and cleaned up well inside the 120 s grace period a cancel would have given it.
    await waitFor(
      "the stubborn step to be killed and its workspace removed",
      async () => workspaces().length === 0,
      30_000,
    );
    expect(stack.worker.agent.running).toEqual([]);
  });
});
