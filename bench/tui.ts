// The console rows of docs/design.md §10: with 10,000 agents, the time to draw a frame (into a headless
// terminal, as over SSH), the CPU it uses while nothing changes, and its resident memory. In-process,
// against fixtures: the API is not what is measured here. `tsx bench/tui.ts [--idle-ms N]` prints JSON.
import { pathToFileURL } from "node:url";
import type { TestConsole } from "../apps/cli/test/tui/console.ts";
import { startConsole } from "../apps/cli/test/tui/console.ts";
import { agent, FakeBackend, job } from "../apps/cli/test/tui/fixtures.ts";
import { percentile } from "./lib.ts";

export interface TuiBenchOptions {
  agents?: number;
  /** How long to watch the idle console's CPU use (docs/design.md §10 says 30 s). */
  idleMs?: number;
  /** Frames timed while heartbeats arrive and the selection moves. */
  frames?: number;
  /** How long to flood the console with heartbeats (1,000/s) to check the frame cap. */
  floodMs?: number;
  /** Jobs paged into the Jobs view afterwards. */
  jobs?: number;
}

export interface TuiBenchResult {
  agents: number;
  /** Draw time of one frame of the Agents view, with heartbeats arriving between frames. */
  frameMs: { p50: number; p95: number; max: number };
  /** The first frame after an agent joined (the list is sorted again). */
  resortFrameMs: number;
  /** CPU used while nothing changes (the heartbeat ages still tick once a second), % of one core. */
  idleCpuPercent: number;
  /** Frames drawn per second under 1,000 heartbeats a second (capped at 10). */
  floodFps: number;
  floodCpuPercent: number;
  /** Resident memory of the whole process with the agents loaded, and before them (runtime, modules). */
  rssMb: number;
  rssBaselineMb: number;
  /** Jobs paged into the Jobs view with `M`, 500 at a time, beside the agents. */
  jobs: number;
  /** Paging them all in, and a frame of the Jobs view once they are there (sorted by name). */
  jobsPagingMs: number;
  jobsFrameMs: { p50: number; p95: number; max: number };
  /** Resident memory with the agents and the jobs loaded. */
  jobsRssMb: number;
}

function fleetOf(n: number, now: number) {
  return Array.from({ length: n }, (_, i) =>
    agent(
      {
        id: `agt_${String(i).padStart(6, "0")}`,
        name: `worker-${String(i).padStart(5, "0")}`,
        labels: { queue: i % 3 === 0 ? "gpu" : "default", zone: `z${i % 4}` },
        activity: i % 5 === 0 ? "busy" : "idle",
      },
      now,
    ),
  );
}

/** Finished jobs, newest first, a second apart, as the API lists them. */
function jobsOf(n: number) {
  const start = Date.now();
  return Array.from({ length: n }, (_, i) =>
    job({
      id: `job_${String(i).padStart(7, "0")}`,
      name: `dependency-update-${i % 997}`,
      createdAt: new Date(start - i * 1000).toISOString(),
    }),
  );
}

function cpuPercent(from: NodeJS.CpuUsage, ms: number): number {
  const used = process.cpuUsage(from);
  return ((used.user + used.system) / 1000 / ms) * 100;
}

const heartbeat = (id: string) => ({
  agentId: id,
  activity: "idle",
  at: new Date().toISOString(),
  running: 0,
});

async function timeFrames(
  c: TestConsole,
  backend: FakeBackend,
  n: number,
  frames: number,
): Promise<number[]> {
  const feed = backend.eventFeeds[0];
  const times: number[] = [];
  let eventId = 1;
  for (let f = 0; f < frames; f++) {
    for (let h = 0; h < 100; h++)
      feed?.emit(
        "agent.heartbeat",
        heartbeat(`agt_${String((f * 100 + h) % n).padStart(6, "0")}`),
        eventId++,
      );
    if (f % 10 === 0) await c.press(f % 20 === 0 ? "G" : "g");
    c.app.renderNow();
    times.push(c.app.lastFrameMs);
    await c.screen.flush();
  }
  return times.sort((a, b) => a - b);
}

async function flood(c: TestConsole, backend: FakeBackend, n: number, ms: number) {
  const feed = backend.eventFeeds[0];
  const framesBefore = c.app.frameCount;
  const cpu = process.cpuUsage();
  const start = Date.now();
  let i = 0;
  while (Date.now() - start < ms) {
    for (let k = 0; k < 100; k++, i++)
      feed?.emit("agent.heartbeat", heartbeat(`agt_${String(i % n).padStart(6, "0")}`), 1_000_000 + i);
    await new Promise((r) => setTimeout(r, 100));
  }
  const took = Date.now() - start;
  return { fps: ((c.app.frameCount - framesBefore) * 1000) / took, cpu: cpuPercent(cpu, took) };
}

export async function benchTui(opts: TuiBenchOptions = {}): Promise<TuiBenchResult> {
  const n = opts.agents ?? 10_000;
  const backend = new FakeBackend();
  backend.who = { name: "bench", role: "operator" };
  const c = startConsole(backend, { cols: 160, rows: 48 });
  try {
    await c.waitForText("● live", 30_000);
    const rssBaselineMb = process.memoryUsage().rss / 2 ** 20;
    backend.agents = fleetOf(n, Date.now());
    await c.press(":agents\r");
    await c.app.sync.reload();
    await c.waitForText(`Agents (${n})`, 30_000);
    // What the server holds is not the console's memory.
    backend.agents = [];
    const times = await timeFrames(c, backend, n, opts.frames ?? 200);
    backend.eventFeeds[0]?.emit(
      "agent.registered",
      { agentId: "agt_new", name: "worker-new", sandbox: "bwrap" },
      999_999,
    );
    backend.agents = [agent({ id: "agt_new", name: "worker-new" })];
    await c.waitForText(`Agents (${n + 1})`, 10_000);
    c.app.stores.agents.upsert(agent({ id: "agt_new2", name: "worker-new2" }));
    c.app.renderNow();
    const resortFrameMs = c.app.lastFrameMs;
    await c.screen.flush();
    const flooded = await flood(c, backend, n, opts.floodMs ?? 5_000);
    const idleMs = opts.idleMs ?? 30_000;
    await new Promise((r) => setTimeout(r, 500));
    const cpu = process.cpuUsage();
    await new Promise((r) => setTimeout(r, idleMs));
    const idleCpuPercent = cpuPercent(cpu, idleMs);
    const rssMb = process.memoryUsage().rss / 2 ** 20;

    // Then 100,000 jobs, paged in as an operator would with M, and the Jobs view drawn over them.
    const jobCount = opts.jobs ?? 100_000;
    backend.jobs = jobsOf(jobCount);
    await c.press(":jobs\r");
    await c.app.sync.reload();
    const pagingStart = performance.now();
    while ((await c.app.sync.loadOlderJobs()) !== null) {
      // every page until the server has no older ones
    }
    const jobsPagingMs = performance.now() - pagingStart;
    backend.jobs = [];
    await c.waitForText(`Jobs (${jobCount})`, 60_000);
    await c.press(">");
    await c.press(">");
    const jobFrames: number[] = [];
    for (let f = 0; f < 50; f++) {
      if (f % 10 === 0) await c.press(f % 20 === 0 ? "G" : "g");
      c.app.renderNow();
      jobFrames.push(c.app.lastFrameMs);
      await c.screen.flush();
    }
    jobFrames.sort((a, b) => a - b);
    return {
      agents: n,
      frameMs: { p50: percentile(times, 50), p95: percentile(times, 95), max: times.at(-1) ?? Number.NaN },
      resortFrameMs,
      idleCpuPercent,
      floodFps: flooded.fps,
      floodCpuPercent: flooded.cpu,
      rssMb,
      rssBaselineMb,
      jobs: jobCount,
      jobsPagingMs,
      jobsFrameMs: {
        p50: percentile(jobFrames, 50),
        p95: percentile(jobFrames, 95),
        max: jobFrames.at(-1) ?? Number.NaN,
      },
      jobsRssMb: process.memoryUsage().rss / 2 ** 20,
    };
  } finally {
    c.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const idleArg = process.argv.indexOf("--idle-ms");
  const idleMs = idleArg > 0 ? Number(process.argv[idleArg + 1]) : undefined;
  const result = await benchTui(idleMs === undefined ? {} : { idleMs });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
