import { waitFor } from "@skiff/testkit";
import type { App } from "../../src/tui/app.ts";

/** A JSON call to the API as the admin (or `token`): what `TestApi.call` and `apiCaller` give. */
export type Call = (
  method: string,
  path: string,
  opts?: { token?: string | null; body?: unknown },
) => Promise<{ status: number; body: any }>;

/** A small seeded generator, so a failing sequence can be run again from its seed. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick<T>(xs: readonly T[]): T | undefined {
      return xs.length === 0 ? undefined : xs[Math.floor(next() * xs.length)];
    },
  };
}

/** Every job the API lists, all pages. */
async function allJobs(call: Call): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const res = await call(
      "GET",
      `/v1/jobs?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
    out.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return out;
}

/**
 * The console's model against the API's listings: the same jobs with the same state, attempt and
 * exit code, the same agents with the same status and activity, the same audit entries and fleet.
 * Answers the differences (none when equal).
 */
export async function differences(call: Call, app: App): Promise<string[]> {
  const s = app.stores;
  const diffs: string[] = [];
  const jobs = await allJobs(call);
  const shown = new Map(s.jobs.list().map((j) => [j.id, j]));
  if (shown.size !== jobs.length) diffs.push(`jobs: console has ${shown.size}, API ${jobs.length}`);
  for (const j of jobs) {
    const c = shown.get(j.id);
    if (!c) diffs.push(`job ${j.id} missing`);
    else
      for (const k of ["state", "attempt", "maxAttempts", "exitCode", "agentId"] as const)
        if (c[k] !== j[k]) diffs.push(`job ${j.id} ${k}: console ${c[k]}, API ${j[k]}`);
  }
  const agents = (await call("GET", "/v1/agents")).body.items as any[];
  for (const a of agents) {
    const c = s.agents.get(a.id);
    if (!c) diffs.push(`agent ${a.id} missing`);
    else
      for (const k of ["status", "activity"] as const)
        if (c[k] !== a[k]) diffs.push(`agent ${a.name} ${k}: console ${c[k]}, API ${a[k]}`);
  }
  const audit: number[] = [];
  for (let cursor: string | null = ""; cursor !== null; ) {
    const page: { items: { seq: number }[]; nextCursor: string | null } = (
      await call("GET", `/v1/audit?limit=1000${cursor ? `&cursor=${cursor}` : ""}`)
    ).body;
    audit.push(...page.items.map((e: any) => e.seq));
    cursor = page.nextCursor;
  }
  const seen = s.audit.list().map((e) => e.seq);
  if (JSON.stringify(seen) !== JSON.stringify(audit))
    diffs.push(
      `audit: console ${seen.length} entries (newest ${seen[0]}), API ${audit.length} (newest ${audit[0]})`,
    );
  const fleet = (await call("GET", "/v1/fleet")).body;
  for (const k of ["mode", "replicas"] as const)
    if (s.fleet.view?.[k] !== fleet[k])
      diffs.push(`fleet ${k}: console ${s.fleet.view?.[k]}, API ${fleet[k]}`);
  return diffs;
}

export async function converged(call: Call, app: App, what: string, timeoutMs = 30_000): Promise<void> {
  let last: string[] = [];
  try {
    await waitFor(
      what,
      async () => {
        last = await differences(call, app);
        return last.length === 0;
      },
      timeoutMs,
      250,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; still different:\n${last.slice(0, 20).join("\n")}`);
  }
}

/** An agent working through the protocol: claims, starts and finishes jobs with chosen exit codes. */
export function worker(call: Call, agentToken: string, agentId: string) {
  const post = (path: string, body: unknown) => call("POST", path, { token: agentToken, body });
  return {
    async claim(max: number): Promise<{ id: string; epoch: number }[]> {
      const res = await post("/v1/agent/claim", { agentId, max, waitMs: 0 });
      return (res.body.jobs ?? []).map((c: any) => ({ id: c.job.id, epoch: c.epoch }));
    },
    start: (j: { id: string; epoch: number }) =>
      post(`/v1/agent/jobs/${j.id}/events`, {
        agentId,
        epoch: j.epoch,
        events: [{ type: "step.started", step: 0 }],
      }),
    finish: (j: { id: string; epoch: number }, exitCode: number) =>
      post(`/v1/agent/jobs/${j.id}/finish`, {
        agentId,
        epoch: j.epoch,
        outcome: exitCode === 0 ? "succeeded" : "failed",
        exitCode,
      }),
    heartbeat: (status: "idle" | "busy", running: { jobId: string; epoch: number }[]) =>
      post("/v1/agent/heartbeat", { agentId, status, resources: { cpuPercent: 5 }, running }),
  };
}
