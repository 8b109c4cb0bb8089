import type { JobEvent } from "@skiff/protocol";
import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore, type Store, TRUNCATION_MARKER } from "../src/index.ts";
import { alice, spec } from "./fixtures.ts";

const MB = 1 << 20;
/** Written out, not imported: a change to the marker users see must show up here. */
const MARKER = "[log truncated]";
let queues = 0;

/** What the lease holder's events and finish leave behind, read back as a user would see it. */
describeWith(await pgGate(), "events and finishes from the lease holder [pg]", () => {
  let database: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 4 });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  async function claimed(steps = 2) {
    const queue = `q-ev-${++queues}`;
    const all = [
      { name: "one", run: "echo one" },
      { name: "two", run: "echo two" },
      { name: "three", run: "echo three" },
    ];
    const job = (await store.submitJob(spec({ queue, steps: all.slice(0, steps) }), alice)).value;
    const agentId = `agent-${queue}`;
    const [claim] = await store.claimJobs(agentId, [queue], 1);
    if (!claim) throw new Error("nothing claimed");
    const send = (events: JobEvent[], logCapBytes = MB) =>
      store.appendEvents({ jobId: job.id, agentId, epoch: claim.epoch, events, logCapBytes });
    const finish = (
      outcome: "succeeded" | "failed" | "canceled" | "timed_out",
      exitCode: number | null,
      error?: string,
    ) => store.finishJob({ jobId: job.id, agentId, epoch: claim.epoch, outcome, exitCode, error });
    return { job, agentId, epoch: claim.epoch, send, finish };
  }
  const log = (seq: number, text: string, extra: Partial<JobEvent> = {}): JobEvent =>
    ({ type: "log", seq, step: 0, stream: "stdout", text, ...extra }) as JobEvent;
  const within = (iso: string | null | undefined, ms = 60_000) =>
    iso !== null && iso !== undefined && Math.abs(Date.parse(iso) - Date.now()) < ms;

  it("keeps the times the agent gives for steps and lines, and uses the arrival time when there is none or it is bad", async () => {
    const { job, send } = await claimed();
    const res = await send([
      { type: "step.started", step: 0, ts: "2026-03-01T10:00:00Z" },
      log(1, "given", { ts: "2026-03-01T10:00:01.500Z" }),
      log(2, "none"),
      log(3, "bad", { ts: "yesterday-ish" }),
      { type: "step.started", step: 0, ts: "2026-03-01T10:00:05Z" }, // a retried start does not move it
      { type: "step.finished", step: 0, outcome: "succeeded", exitCode: 0, ts: "2026-03-01T10:00:09Z" },
      // Finished without a start event (a worker that crashed between them): started = finished.
      { type: "step.finished", step: 1, outcome: "failed", exitCode: 7, ts: "2026-03-01T10:00:10Z" },
    ]);
    if (!res.ok) throw new Error(res.reason);
    expect(res.lines.map((l) => [l.seq, l.step, l.stream, l.text])).toEqual([
      [1, 0, "stdout", "given"],
      [2, 0, "stdout", "none"],
      [3, 0, "stdout", "bad"],
    ]);
    const logs = await store.listLogs(job.id, 0, 10);
    expect(logs.map((l) => l.ts)).toEqual(res.lines.map((l) => l.ts));
    expect(logs[0]?.ts).toBe("2026-03-01T10:00:01.500Z");
    expect(within(logs[1]?.ts)).toBe(true);
    expect(within(logs[2]?.ts)).toBe(true);
    const steps = (await store.getJob(job.id))?.steps;
    expect(steps?.[0]).toMatchObject({
      state: "succeeded",
      exitCode: 0,
      startedAt: "2026-03-01T10:00:00.000Z",
      finishedAt: "2026-03-01T10:00:09.000Z",
    });
    expect(steps?.[1]).toMatchObject({
      state: "failed",
      exitCode: 7,
      startedAt: "2026-03-01T10:00:10.000Z",
      finishedAt: "2026-03-01T10:00:10.000Z",
    });
  });

  it("a step started without a time gets the arrival time", async () => {
    const { job, send } = await claimed();
    await send([{ type: "step.started", step: 1 }]);
    const step = (await store.getJob(job.id))?.steps[1];
    expect(step?.state).toBe("running");
    expect(within(step?.startedAt)).toBe(true);
  });

  it("lines without a step and on every stream are stored as sent, and all count against the cap", async () => {
    const { job, send } = await claimed();
    const res = await send([
      log(1, "setup", { step: null, stream: "system" }),
      log(2, "err", { step: 1, stream: "stderr" }),
      // A job may print the marker's text itself; that is output like any other.
      log(3, MARKER, { step: 1, stream: "stdout" }),
    ]);
    if (!res.ok) throw new Error(res.reason);
    const expected = [
      [1, null, "system", "setup"],
      [2, 1, "stderr", "err"],
      [3, 1, "stdout", MARKER],
    ];
    expect(res.lines.map((l) => [l.seq, l.step, l.stream, l.text])).toEqual(expected);
    expect((await store.listLogs(job.id, 0, 10)).map((l) => [l.seq, l.step, l.stream, l.text])).toEqual(
      expected,
    );
    expect((await store.getJob(job.id))?.logBytes).toBe(5 + 3 + MARKER.length);
  });

  it("cuts a single batch that crosses the cap at the line that would cross it", async () => {
    const { job, send } = await claimed();
    const sixty = "s".repeat(60);
    const res = await send([log(1, sixty), log(2, sixty), log(3, "t")], 100);
    if (!res.ok) throw new Error(res.reason);
    expect(res.lines.map((l) => [l.seq, l.text])).toEqual([
      [1, sixty],
      [2, MARKER],
    ]);
    expect((await store.getJob(job.id))?.logBytes).toBe(60);
  });

  it("fills the log exactly to the cap, then stores one marker that does not count against it", async () => {
    const { job, send } = await claimed();
    const fifty = "y".repeat(50);
    const first = await send([log(1, fifty), log(2, fifty)], 100);
    expect(first).toMatchObject({ ok: true });
    expect((await store.getJob(job.id))?.logBytes).toBe(100);
    const over = await send([log(3, "z"), log(4, "z")], 100);
    if (!over.ok) throw new Error(over.reason);
    expect(over.lines.map((l) => [l.seq, l.stream, l.text])).toEqual([[3, "system", MARKER]]);
    expect((await store.getJob(job.id))?.logBytes).toBe(100);
    // Later lines are dropped without a second marker, and the job goes on.
    const later = await send([log(5, "z")], 100);
    expect(later).toMatchObject({ ok: true, lines: [] });
    expect((await store.listLogs(job.id, 0, 10)).map((l) => l.seq)).toEqual([1, 2, 3]);
  });

  it("a worker's truncation marker sets the flag without cutting the log: the tail after it is stored", async () => {
    const { job, send } = await claimed();
    const marker = log(2, "[log truncated: 5 lines (500 B) left out here]", {
      stream: "system",
      omitted: { lines: 5, bytes: 500 },
    });
    const res = await send([log(1, "head"), marker, log(3, "tail"), log(4, "last")], 100);
    if (!res.ok) throw new Error(res.reason);
    expect(res.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect(await store.getJob(job.id)).toMatchObject({ logTruncated: true });
    const later = await send([log(5, "still stored")], 100);
    expect(later).toMatchObject({ ok: true, lines: [{ seq: 5 }] });
  });

  it("a plain system line does not set the flag; a log under the cap is not truncated", async () => {
    const { job, send } = await claimed();
    await send([log(1, "[log truncated: a job may print this]", { stream: "system" }), log(2, "x")], 100);
    expect(await store.getJob(job.id)).toMatchObject({ logTruncated: false });
  });

  it("past the cap the API still stores Skiff's own lines (a step's result), up to a slack of 1 MiB, but no output", async () => {
    const { job, send } = await claimed();
    const res = await send(
      [
        log(1, "o".repeat(100)),
        log(2, "over"),
        log(3, "--- one succeeded in 1.0 s", { stream: "system" }),
        log(4, "more output"),
        log(5, "s".repeat(MB), { stream: "system" }),
      ],
      100,
    );
    if (!res.ok) throw new Error(res.reason);
    expect(res.lines.map((l) => [l.seq, l.stream, l.text])).toEqual([
      [1, "stdout", "o".repeat(100)],
      [2, "system", MARKER],
      [3, "system", "--- one succeeded in 1.0 s"],
    ]);
    expect(await store.getJob(job.id)).toMatchObject({ logTruncated: true });
    // Once cut, later output stays out, in later batches too; Skiff's lines still go in.
    const later = await send([log(6, "x"), log(7, "--- two failed", { stream: "system" })], 100);
    if (!later.ok) throw new Error(later.reason);
    expect(later.lines.map((l) => l.seq)).toEqual([7]);
  });

  it("exports the marker it writes", () => {
    expect(TRUNCATION_MARKER).toBe(MARKER);
  });

  it("counts only the bytes of lines it stored, once, in UTF-8", async () => {
    const { job, send } = await claimed();
    await send([log(1, "héllo"), log(2, "ok")]);
    await send([log(2, "ok"), log(3, "€")]);
    expect((await store.getJob(job.id))?.logBytes).toBe(6 + 2 + 3);
  });

  it("tells the holder to stop once the job is being canceled, and still takes its lines", async () => {
    const { job, send } = await claimed();
    expect(await send([log(1, "before")])).toMatchObject({ ok: true, cancel: false, startedNow: true });
    await store.cancelJob(job.id, "user asked", alice);
    const res = await send([log(2, "after")]);
    expect(res).toMatchObject({ ok: true, cancel: true, startedNow: false, job: { state: "canceling" } });
    expect((await store.listLogs(job.id, 0, 10)).map((l) => l.text)).toEqual(["before", "after"]);
  });

  it("after the finish, the holder's events get already_final and a stale epoch still gets lease_lost", async () => {
    const { job, agentId, epoch, send, finish } = await claimed();
    expect(await finish("succeeded", 0)).toMatchObject({ ok: true });
    expect(await send([log(1, "late")])).toMatchObject({ ok: false, reason: "already_final" });
    const stale = await store.appendEvents({
      jobId: job.id,
      agentId,
      epoch: epoch - 1,
      events: [log(1, "late")],
      logCapBytes: MB,
    });
    expect(stale).toMatchObject({ ok: false, reason: "lease_lost" });
    const missing = await store.appendEvents({
      jobId: "job_nope",
      agentId,
      epoch,
      events: [],
      logCapBytes: MB,
    });
    expect(missing).toEqual({ ok: false, reason: "not_found", job: null });
    expect(await store.listLogs(job.id, 0, 10)).toEqual([]);
  });

  it("a finish settles every step: the running one takes the outcome, the ones not reached are skipped", async () => {
    const { job, send, finish } = await claimed(3);
    await send([
      { type: "step.started", step: 0 },
      { type: "step.finished", step: 0, outcome: "succeeded", exitCode: 0 },
      { type: "step.started", step: 1 },
    ]);
    const done = await finish("failed", 2, "step two broke");
    expect(done).toMatchObject({ ok: true, job: { state: "failed", exitCode: 2 } });
    const after = await store.getJob(job.id);
    expect(after).toMatchObject({ state: "failed", exitCode: 2, error: "step two broke" });
    expect(within(after?.finishedAt)).toBe(true);
    expect(after?.steps.map((s) => [s.state, s.exitCode])).toEqual([
      ["succeeded", 0],
      ["failed", null],
      ["skipped", null],
    ]);
    expect(after?.steps.every((s) => s.finishedAt !== null)).toBe(true);
  });

  it("a job finished straight from assigned gets a start time, and a null exit code is kept", async () => {
    const { job, finish } = await claimed(1);
    expect(await finish("timed_out", null)).toMatchObject({
      ok: true,
      job: { state: "timed_out", exitCode: null },
    });
    const after = await store.getJob(job.id);
    expect(within(after?.startedAt)).toBe(true);
    expect(after?.error).toBeNull();
    expect(after?.steps.map((s) => s.state)).toEqual(["skipped"]);
  });

  it("answers a batch in input order, each job named twice seeing the first outcome", async () => {
    const a = await claimed(1);
    const b = await claimed(1);
    const results = await store.finishJobs([
      { jobId: a.job.id, agentId: a.agentId, epoch: a.epoch, outcome: "succeeded", exitCode: 0 },
      { jobId: b.job.id, agentId: b.agentId, epoch: b.epoch, outcome: "failed", exitCode: 1 },
      { jobId: b.job.id, agentId: b.agentId, epoch: b.epoch, outcome: "succeeded", exitCode: 0 },
      { jobId: a.job.id, agentId: "someone-else", epoch: a.epoch, outcome: "failed", exitCode: 1 },
      { jobId: a.job.id, agentId: a.agentId, epoch: a.epoch, outcome: "failed", exitCode: 1 },
    ]);
    expect(
      results.map((r) => (r.ok ? `${r.job.id === a.job.id ? "a" : "b"}:${r.job.state}` : r.reason)),
    ).toEqual(["a:succeeded", "b:failed", "already_final", "lease_lost", "already_final"]);
    expect(await store.finishJobs([])).toEqual([]);
  });
});
