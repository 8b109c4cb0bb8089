import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allOf,
  createTestDatabase,
  describeWith,
  pgGate,
  redisGate,
  TEST_REDIS_URL,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  apiCaller,
  exitOf,
  freePort,
  isRunning,
  killLeftovers,
  type Proc,
  startApi,
  startWorkerProc,
  stopProc,
  whileRunning,
} from "./procs.ts";
import { bwrapGate } from "./support.ts";

const gate = allOf(await pgGate(), await redisGate(), bwrapGate());

// Short agent timing so a SIGKILLed worker is declared lost in seconds.
const TIMING = {
  SKIFF_HEARTBEAT_INTERVAL_MS: "500",
  SKIFF_OFFLINE_AFTER_MS: "6000",
  SKIFF_REAPER_INTERVAL_MS: "250",
};
// The API that comes back after the restart keeps the default offline threshold (30 s): a restart
// on a loaded machine can take longer than the 6 s above, and then a reaper would rightly take the
// job away from a worker that was only waiting for the API, which is not what this test is about.
const RESTART_TIMING = {
  SKIFF_HEARTBEAT_INTERVAL_MS: "500",
  SKIFF_REAPER_INTERVAL_MS: "250",
};

// Where a step's cgroup can live (v1 per controller, v2 unified), as the bwrap driver makes them.
const CGROUP_BASES = [
  "/sys/fs/cgroup/skiff",
  "/sys/fs/cgroup/pids/skiff",
  "/sys/fs/cgroup/memory/skiff",
  "/sys/fs/cgroup/cpu/skiff",
];

function cgroupsOf(workerName: string): string[] {
  return CGROUP_BASES.flatMap((base) =>
    existsSync(base)
      ? readdirSync(base)
          .filter((n) => n.startsWith(`${workerName}--`))
          .map((n) => join(base, n))
      : [],
  );
}

interface Line {
  seq: number;
  ts: string;
  step: number | null;
  stream: string;
  text: string;
}

describeWith(gate, "worker failures with real processes [postgres, redis, bwrap]", () => {
  const tag = randomBytes(3).toString("hex");
  const home = mkdtempSync(join(tmpdir(), "skiff-fail-home-"));
  const workDir = mkdtempSync(join(tmpdir(), "skiff-fail-work-"));
  const prefix = `skiff-fail-${tag}`;
  let database: TestDatabase;
  let port: number;
  let api: { proc: Proc; url: string };
  let admin: string;
  let agentToken: string;

  const call = apiCaller(
    () => api.url,
    () => admin,
  );
  const getJob = async (id: string) => (await call("GET", `/v1/jobs/${id}`)).body;
  const logs = async (id: string): Promise<Line[]> =>
    (await call("GET", `/v1/jobs/${id}/logs?limit=10000`)).body.lines;
  const output = (lines: Line[]) => lines.filter((l) => l.stream === "stdout").map((l) => l.text);
  const submit = async (spec: Record<string, unknown>) => {
    const res = await call("POST", "/v1/jobs", spec);
    expect(res.status).toBe(201);
    return res.body as { id: string };
  };
  const final = (id: string, timeoutMs = 45_000) =>
    waitFor(
      `job ${id} to finish`,
      async () => {
        const job = await getJob(id);
        return ["succeeded", "failed", "canceled", "timed_out"].includes(job.state) ? job : undefined;
      },
      timeoutMs,
      100,
    );
  /** Claim requests the API has answered, from its own metrics. */
  const claimCalls = async () => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    return [
      ...text.matchAll(
        /^skiff_http_request_duration_seconds_count\{[^}]*route="\/v1\/agent\/claim"[^}]*\} (\d+)$/gm,
      ),
    ]
      .map((m) => Number(m[1]))
      .reduce((a, b) => a + b, 0);
  };
  const countTo = (n: number, pause: number) =>
    `for i in $(seq 1 ${n}); do echo "line $i"; sleep ${pause}; done`;
  const numbered = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);
  const worker = (name: string, queue: string, slots = 1) =>
    startWorkerProc(name, { apiUrl: api.url, token: agentToken, workDir, queue, slots });
  const startOurApi = (name: string, env: Record<string, string> = TIMING) =>
    startApi(name, {
      port,
      home,
      databaseUrl: database.url,
      redisUrl: TEST_REDIS_URL,
      busPrefix: prefix,
      env,
    });

  beforeAll(async () => {
    database = await createTestDatabase();
    port = await freePort();
    api = await startOurApi("skiff api #1");
    admin = readFileSync(join(home, "admin.token"), "utf8").trim();
    const token = await call("POST", "/v1/tokens", { name: "pool", role: "agent" });
    expect(token.status).toBe(201);
    agentToken = token.body.token;
  });

  afterAll(async () => {
    // Every test stops the workers it started; only the API is meant to be running now. Anything
    // else is killed and fails the suite.
    if (api && isRunning(api.proc)) await stopProc(api.proc, "SIGTERM", 15_000).catch(() => {});
    const leaked = await killLeftovers();
    await database?.drop();
    rmSync(home, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
    expect(leaked, "child processes still running after the suite").toEqual([]);
  });

  // Shared by the first two tests: the worker that is killed, and what it left behind.
  const nameA = `fail-a-${tag}`;
  const queue1 = `q1-${tag}`;
  let leftoverWorkspaces: string[] = [];
  let leftoverCgroups: string[] = [];

  it("kill -9 of a worker mid-job: the reaper requeues the job, another worker runs attempt 2, the dead worker's late reports get 409 lease_lost", async () => {
    const a = await worker(nameA, queue1);
    const job = await submit({
      name: "count-slowly",
      queue: queue1,
      maxAttempts: 3,
      // Each attempt first prints a line of its own, so the log shows which attempt wrote what.
      steps: [
        { name: "count", run: `echo "run $(cat /proc/sys/kernel/random/uuid)"; ${countTo(100, 0.05)}` },
      ],
    });
    await whileRunning(
      a.proc,
      "some numbered lines from worker A",
      async () => output(await logs(job.id)).filter((t) => t.startsWith("line ")).length >= 5,
    );
    const first = await getJob(job.id);
    expect(first).toMatchObject({ state: "running", attempt: 1, agentId: a.agentId });
    leftoverWorkspaces = readdirSync(join(workDir, nameA));
    expect(leftoverWorkspaces.some((d) => d.startsWith(`${job.id}-`))).toBe(true);

    expect(await stopProc(a.proc, "SIGKILL")).toMatchObject({ signal: "SIGKILL" });
    // Nothing cleaned up after the crash: the workspace and the step's cgroups are still there.
    expect(readdirSync(join(workDir, nameA))).toEqual(leftoverWorkspaces);
    const sandboxLine = (await logs(job.id)).find((l) => l.text.startsWith("sandbox: bwrap"))?.text ?? "";
    leftoverCgroups = cgroupsOf(nameA);
    if (/\(cgroup v[12]\)/.test(sandboxLine)) expect(leftoverCgroups.length).toBeGreaterThan(0);
    const linesBeforeKill = output(await logs(job.id)).filter((t) => t.startsWith("line ")).length;
    expect(linesBeforeKill).toBeLessThan(100);

    const requeued = await waitFor(
      "the reaper to mark worker A offline and requeue its job",
      async () => {
        const j = await getJob(job.id);
        return j.state === "queued" ? j : undefined;
      },
      20_000,
      100,
    );
    expect(requeued.epoch).toBeGreaterThan(first.epoch);
    expect(requeued.agentId).toBeNull();
    expect((await call("GET", `/v1/agents/${a.agentId}`)).body.status).toBe("offline");

    const b = await worker(`fail-b-${tag}`, queue1);
    const done = await final(job.id);
    expect(done).toMatchObject({ state: "succeeded", attempt: 2, agentId: b.agentId, exitCode: 0 });
    // A step that ends normally leaves no cgroup behind: it is removed before the job is reported.
    expect(cgroupsOf(`fail-b-${tag}`)).toEqual([]);
    expect(done.epoch).toBeGreaterThan(requeued.epoch);

    // The log keeps what attempt 1 wrote before the crash, then all of attempt 2, in order.
    const lines = await logs(job.id);
    const seqs = lines.map((l) => l.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
    const out = output(lines);
    const runs = out.filter((t) => t.startsWith("run "));
    expect(runs).toHaveLength(2);
    expect(runs[0]).not.toBe(runs[1]);
    const second = out.lastIndexOf(runs[1] ?? "");
    expect(out.slice(second + 1)).toEqual(numbered(100));
    expect(out.slice(1, second)).toEqual(numbered(out.slice(1, second).length));

    // Worker A's reports arriving late (it was only partitioned, say) change nothing.
    const late = await call(
      "POST",
      `/v1/agent/jobs/${job.id}/events`,
      {
        agentId: a.agentId,
        epoch: first.epoch,
        events: [{ type: "log", seq: 1_000_000, step: 0, stream: "stdout", text: "late line from A" }],
      },
      agentToken,
    );
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("lease_lost");
    const lateFinish = await call(
      "POST",
      `/v1/agent/jobs/${job.id}/finish`,
      { agentId: a.agentId, epoch: first.epoch, outcome: "failed", exitCode: 1 },
      agentToken,
    );
    expect(lateFinish.status).toBe(409);
    expect(lateFinish.body.error.code).toBe("lease_lost");
    expect(await getJob(job.id)).toMatchObject({ state: "succeeded", attempt: 2, agentId: b.agentId });
    expect(output(await logs(job.id))).not.toContain("late line from A");
    expect(await stopProc(b.proc)).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("orphans of a SIGKILLed worker (workspace, cgroups) are removed when it starts again under its name", async () => {
    expect(leftoverWorkspaces.length).toBeGreaterThan(0);
    // The sandbox died with its worker (--die-with-parent): its cgroups hold no process any more.
    for (const dir of leftoverCgroups) {
      await waitFor(`${dir} to hold no process`, () => {
        const procs = readFileSync(join(dir, "cgroup.procs"), "utf8").trim();
        return procs === "";
      });
    }
    const again = await worker(nameA, queue1);
    expect(readdirSync(join(workDir, nameA))).toEqual([]);
    expect(cgroupsOf(nameA)).toEqual([]);
    expect(await stopProc(again.proc)).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("an API restart mid-job: the step keeps running, the worker reconnects, and the log has every line exactly once", async () => {
    const queue = `q3-${tag}`;
    const c = await worker(`fail-c-${tag}`, queue);
    const job = await submit({
      name: "through-restart",
      queue,
      steps: [{ name: "count", run: countTo(200, 0.03) }],
    });
    const seenBeforeStop = await whileRunning(c.proc, "about a quarter of the lines", async () => {
      const n = output(await logs(job.id)).length;
      return n >= 50 ? n : undefined;
    });
    expect(seenBeforeStop).toBeLessThan(200);
    expect(await stopProc(api.proc)).toEqual({ code: 0, signal: null });
    const downAt = Date.now();

    // With the API gone the worker still runs the step.
    const health = await (await fetch(`${c.healthUrl}/readyz`)).json();
    expect(health).toMatchObject({ running: 1 });
    api = await startOurApi("skiff api #2", RESTART_TIMING);
    const backAt = Date.now();

    const done = await final(job.id);
    expect(done).toMatchObject({ state: "succeeded", attempt: 1, agentId: c.agentId });
    expect(cgroupsOf(`fail-c-${tag}`)).toEqual([]);
    const lines = await logs(job.id);
    expect(output(lines)).toEqual(numbered(200));
    // Lines the step printed while no API was listening were held by the worker and delivered after.
    const printedWhileDown = lines.filter((l) => {
      const at = Date.parse(l.ts);
      return l.stream === "stdout" && at > downAt && at < backAt;
    });
    expect(printedWhileDown.length).toBeGreaterThan(0);
    const seqs = lines.map((l) => l.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((x, y) => x - y));
    expect(await stopProc(c.proc)).toEqual({ code: 0, signal: null });
  }, 120_000);

  it("drain of a worker process: it finishes its job, takes no new one and exits 0; SIGTERM to an idle worker deregisters it and exits 0", async () => {
    const queue = `q4-${tag}`;
    const d = await worker(`fail-d-${tag}`, queue, 2);
    const busy = await submit({
      name: "drain-me",
      queue,
      steps: [{ name: "s", run: "echo go; sleep 3; echo finished" }],
    });
    await whileRunning(d.proc, "the job to start", async () => output(await logs(busy.id)).includes("go"));
    const claimsBefore = await claimCalls();
    const drain = await call("POST", `/v1/agents/${d.agentId}/drain`, { reason: "maintenance" });
    expect(drain.status).toBe(200);
    const later = await submit({ name: "after-drain", queue, steps: [{ name: "s", run: "true" }] });

    expect(await exitOf(d.proc, 30_000, "exit once drained")).toEqual({ code: 0, signal: null });
    const done = await getJob(busy.id);
    expect(done).toMatchObject({ state: "succeeded", agentId: d.agentId });
    expect(output(await logs(busy.id))).toEqual(["go", "finished"]);
    expect((await getJob(later.id)).state).toBe("queued");
    // Until the next heartbeat tells it to drain, the worker's claims come back empty at once: it
    // must not spin on them.
    expect(await claimCalls()).toBeLessThanOrEqual(claimsBefore + 5);
    expect((await call("GET", `/v1/agents/${d.agentId}`)).body).toMatchObject({
      status: "offline",
      drainRequested: true,
    });

    const e = await worker(`fail-e-${tag}`, `q5-${tag}`);
    expect((await call("GET", `/v1/agents/${e.agentId}`)).body.status).toBe("online");
    expect(await stopProc(e.proc, "SIGTERM")).toEqual({ code: 0, signal: null });
    // Deregistered on the way out, not found silent by the reaper seconds later.
    expect((await call("GET", `/v1/agents/${e.agentId}`)).body.status).toBe("offline");
    expect((await getJob(later.id)).state).toBe("queued");
  }, 120_000);
});
