import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { createTestDatabase, startRedisServer } from "@skiff/testkit";
import { type ApiUnderTest, registerAgents, startApi } from "./lib.ts";
import { summarizeLatencies } from "./stream.ts";

const spec = (queue: string) => ({ name: "outage", queue, steps: [{ name: "s", run: "true" }] });

/**
 * Submit latency with Redis up, then with it down: an API on PostgreSQL and a Redis of its own,
 * which is stopped halfway. Writes must not wait for the bus.
 */
export async function submitDuringRedisOutage(samples: number) {
  const database = await createTestDatabase({ empty: true });
  const redis = await startRedisServer();
  const api = await startApi({
    command: "api",
    env: { DATABASE_URL: database.url, REDIS_URL: redis.url, SKIFF_BUS_PREFIX: `outage${process.pid}` },
  });
  const submit = async (queue: string) => {
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      await api.client.call("POST", "/v1/jobs", spec(queue));
      times.push(performance.now() - t);
    }
    return summarizeLatencies(times);
  };
  try {
    const up = await submit("redis-up");
    await redis.stop();
    // Let both of the bus's connections see Redis gone before measuring.
    await new Promise((r) => setTimeout(r, 2_000));
    const down = await submit("redis-down");
    return { up, down };
  } finally {
    await api.stop();
    await redis.stop();
    await database.drop();
  }
}

/**
 * Follows an SSE stream counting `event` events without parsing them: 500 followers parsing every
 * line's JSON would make this process, not the API, the bottleneck being measured.
 */
async function countEvents(
  url: string,
  token: string,
  event: string,
  onCount: (n: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: ${res.status}`);
  const marker = `event: ${event}\n`;
  const decoder = new TextDecoder();
  let carry = "";
  let n = 0;
  for await (const chunk of res.body) {
    const text = carry + decoder.decode(chunk as Uint8Array, { stream: true });
    for (let i = text.indexOf(marker); i >= 0; i = text.indexOf(marker, i + marker.length)) n++;
    carry = text.slice(-(marker.length - 1));
    onCount(n);
  }
}

/** User plus system CPU seconds the process has used, from /proc/PID/stat (clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * `followers` SSE clients follow one job while an agent posts `linesPerSecond` log lines to it for
 * `seconds`: the API's CPU (share of one core), `/readyz` latency meanwhile, and whether every
 * follower got every line.
 */
export async function followersLoad(
  api: ApiUnderTest,
  agentToken: string,
  followers: number,
  seconds: number,
  linesPerSecond = 2_000,
) {
  const queue = `followers${Date.now()}`;
  const [agentId] = await registerAgents(api.client, agentToken, 1, queue);
  const job = await api.client.call("POST", "/v1/jobs", spec(queue));
  const claim = await api.client.call(
    "POST",
    "/v1/agent/claim",
    { agentId, max: 1, waitMs: 5_000 },
    agentToken,
  );
  const epoch = claim.jobs[0]?.epoch as number;
  // Followers are many people: one viewer token per 50 streams keeps each under the per-token
  // stream limit (sseMaxStreamsPerToken, 64), as real viewers would be.
  const tokens: string[] = [];
  for (let i = 0; i < Math.ceil(followers / 50); i++)
    tokens.push(
      (await api.client.call("POST", "/v1/tokens", { name: `follower-${queue}-${i}`, role: "viewer" })).token,
    );
  const abort = new AbortController();
  const counts = new Array<number>(followers).fill(0);
  const streams = counts.map((_, i) =>
    countEvents(
      `${api.url}/v1/jobs/${job.id}/logs/stream`,
      tokens[Math.floor(i / 50)] ?? api.admin,
      "line",
      (n) => {
        counts[i] = n;
      },
      abort.signal,
    ).catch(() => {}),
  );
  // Let every follower connect before the clock starts.
  await new Promise((r) => setTimeout(r, 2_000));
  // /readyz is timed from a thread of its own, so the followers' reading here does not delay it.
  const prober = new Worker(
    `const { parentPort, workerData } = require("node:worker_threads");
     const times = []; let on = true;
     parentPort.on("message", () => { on = false; });
     (async () => {
       while (on) {
         const t = performance.now();
         await fetch(workerData + "/readyz");
         times.push(performance.now() - t);
         await new Promise((r) => setTimeout(r, 100));
       }
       parentPort.postMessage(times);
     })();`,
    { eval: true, workerData: api.url },
  );
  const readyzTimes = new Promise<number[]>((resolve) => prober.once("message", resolve));
  const batch = Math.max(1, Math.round(linesPerSecond / 20));
  const cpu0 = cpuSeconds(api.pid);
  const t0 = performance.now();
  let seq = 0;
  while (performance.now() - t0 < seconds * 1000) {
    const events = Array.from({ length: batch }, () => ({
      type: "log",
      seq: ++seq,
      step: 0,
      stream: "stdout",
      text: `line ${seq} ${"x".repeat(60)}`,
    }));
    await api.client.call("POST", `/v1/agent/jobs/${job.id}/events`, { agentId, epoch, events }, agentToken);
    const due = t0 + (seq / linesPerSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(api.pid) - cpu0) / elapsed;
  // Give the streams a moment to deliver the last batch, then count.
  const deadline = Date.now() + 15_000;
  while (counts.some((c) => c < seq) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  prober.postMessage("stop");
  const readyz = await readyzTimes;
  await prober.terminate();
  abort.abort();
  await Promise.all(streams);
  await api.client.call(
    "POST",
    `/v1/agent/jobs/${job.id}/finish`,
    { agentId, epoch, outcome: "succeeded", exitCode: 0 },
    agentToken,
  );
  return {
    cpu,
    readyz: summarizeLatencies(readyz),
    lines: seq,
    complete: counts.filter((c) => c === seq).length,
    followers,
  };
}
