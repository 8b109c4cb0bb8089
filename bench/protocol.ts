import { type ApiUnderTest, percentile, registerAgents } from "./lib.ts";

export interface Measured {
  value: number;
  extra?: Record<string, number>;
}

const spec = (queue: string, name = "noop") => ({
  name,
  queue,
  maxAttempts: 1,
  steps: [{ name: "noop", run: "true" }],
});

/**
 * Enqueue → claimed: idle agents long-poll; one job at a time is submitted and the time from the
 * submit request to the claim response is taken.
 */
export async function claimLatency(
  api: ApiUnderTest,
  agentToken: string,
  samples: number,
): Promise<Measured> {
  const queue = `lat${Date.now()}`;
  const agents = await registerAgents(api.client, agentToken, 4, queue);
  const times: number[] = [];
  let stop = false;
  let pending: ((t: number) => void) | null = null;
  const pollers = agents.map(async (agentId) => {
    while (!stop) {
      const res = await api.client.call(
        "POST",
        "/v1/agent/claim",
        { agentId, max: 1, waitMs: 2000 },
        agentToken,
      );
      if (res.jobs.length > 0) {
        const now = performance.now();
        for (const c of res.jobs) {
          await api.client.call(
            "POST",
            `/v1/agent/jobs/${c.job.id}/finish`,
            { agentId, epoch: c.epoch, outcome: "succeeded", exitCode: 0 },
            agentToken,
          );
        }
        pending?.(now);
      }
    }
  });
  await new Promise((r) => setTimeout(r, 300)); // let every poller park
  for (let i = 0; i < samples; i++) {
    const claimed = new Promise<number>((resolve) => {
      pending = resolve;
    });
    const t0 = performance.now();
    await api.client.call("POST", "/v1/jobs", spec(queue, `lat-${i}`));
    const t1 = await claimed;
    times.push(t1 - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  stop = true;
  await Promise.all(pollers);
  times.sort((a, b) => a - b);
  return { value: percentile(times, 50), extra: { p50: percentile(times, 50), p99: percentile(times, 99) } };
}

/** Simulated agents claim and finish pre-queued no-op jobs as fast as they can. */
export async function protocolThroughput(
  api: ApiUnderTest,
  agentToken: string,
  jobs: number,
  enqueue: (queue: string, n: number) => Promise<void>,
): Promise<Measured> {
  const queue = `tp${Date.now()}`;
  await enqueue(queue, jobs);
  const agents = await registerAgents(api.client, agentToken, 16, queue);
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    agents.map(async (agentId) => {
      for (;;) {
        const res = await api.client.call(
          "POST",
          "/v1/agent/claim",
          { agentId, max: 8, waitMs: 0 },
          agentToken,
        );
        if (res.jobs.length === 0) return;
        await Promise.all(
          res.jobs.map((c: { job: { id: string }; epoch: number }) =>
            api.client.call(
              "POST",
              `/v1/agent/jobs/${c.job.id}/finish`,
              { agentId, epoch: c.epoch, outcome: "succeeded", exitCode: 0 },
              agentToken,
            ),
          ),
        );
        done += res.jobs.length;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (done !== jobs) throw new Error(`bench: ${done} of ${jobs} jobs finished`);
  return { value: done / seconds };
}

/** Heartbeats from many agents at a fixed concurrency: rate absorbed and latency. */
export async function heartbeatCapacity(
  api: ApiUnderTest,
  agentToken: string,
  seconds: number,
): Promise<Measured> {
  const agents = await registerAgents(api.client, agentToken, 200, `hb${Date.now()}`);
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  let i = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (performance.now() < deadline) {
        const agentId = agents[i++ % agents.length];
        const s = performance.now();
        await api.client.call(
          "POST",
          "/v1/agent/heartbeat",
          { agentId, status: "idle", running: [] },
          agentToken,
        );
        latencies.push(performance.now() - s);
      }
    }),
  );
  const rate = latencies.length / ((performance.now() - t0) / 1000);
  latencies.sort((a, b) => a - b);
  return { value: rate, extra: { p99: percentile(latencies, 99) } };
}
