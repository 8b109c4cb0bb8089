// Skiff's protocol side by side with the tools a TypeScript team would otherwise reach for
// (issue 8): graphile-worker on the same PostgreSQL and BullMQ on the same Redis, with the same
// no-op work and the same sample sizes as the Skiff rows in run.ts.
//
// Concurrency, chosen to mirror what the Skiff figures use (bench/protocol.ts):
// - latency: Skiff has 4 idle agents, each long-polling for one job at a time (`max: 1`), so at most
//   4 jobs can be picked up at once. graphile-worker gets one runner with `concurrency: 4`
//   (`maxPoolSize: 6`, its own advice of concurrency + 2); BullMQ one Worker with `concurrency: 4`.
// - throughput: Skiff has 16 agents claiming in a loop. graphile-worker gets one runner with
//   `concurrency: 16` (`maxPoolSize: 18`); BullMQ one Worker with `concurrency: 16`. Both otherwise
//   run with their defaults: no graphile-worker local queue or completion batching, BullMQ keeps
//   completed jobs (as Skiff keeps its job rows).
// The clock starts at the enqueue call (`addJob` / `Queue.add`, like Skiff's `POST /v1/jobs`) and
// stops when the task function / processor starts (Skiff: when the claim response arrives).
// Throughput: N jobs are queued while the runner is idle but cannot see them (graphile-worker: one
// `add_jobs` statement, visible at its commit; BullMQ: added to a paused queue, then resumed); the
// clock runs from that moment until the N-th job is recorded as completed.
import { createTestDatabase, TEST_REDIS_URL } from "@skiff/testkit";
import { Queue, Worker } from "bullmq";
import { Logger, makeWorkerUtils, run, type WorkerUtils } from "graphile-worker";
import { Redis } from "ioredis";
import { median, percentile } from "./lib.ts";

export interface Latency {
  p50: number;
  p99: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = new Logger(() => () => {});

function redisConnection() {
  const u = new URL(TEST_REDIS_URL);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    maxRetriesPerRequest: null,
  };
}

function latencyOf(times: number[]): Latency {
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** Takes one sample at a time: enqueue, wait for the handler to report that it started. */
async function sequentialSamples(
  samples: number,
  enqueue: () => Promise<unknown>,
  setStarted: (fn: ((t: number) => void) | null) => void,
): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = new Promise<number>((resolve) => setStarted(resolve));
    const t0 = performance.now();
    await enqueue();
    times.push((await started) - t0);
    setStarted(null);
    await sleep(5);
  }
  return latencyOf(times);
}

/** graphile-worker: `addJob` (a WorkerUtils, so no pool per call) → task function starts. */
export async function graphileLatency(
  connectionString: string,
  samples: number,
  concurrency = 4,
): Promise<Latency> {
  let started: ((t: number) => void) | null = null;
  const utils = await makeWorkerUtils({ connectionString, logger: silent });
  const runner = await run({
    connectionString,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    logger: silent,
    crontab: "",
    taskList: {
      noop: async () => {
        started?.(performance.now());
      },
    },
  });
  try {
    await sleep(300); // let every worker go idle and the LISTEN connection settle
    return await sequentialSamples(
      samples,
      () => utils.addJob("noop", {}, { maxAttempts: 1 }),
      (fn) => {
        started = fn;
      },
    );
  } finally {
    await runner.stop();
    await utils.release();
  }
}

async function graphileBacklog(utils: WorkerUtils): Promise<number> {
  return utils.withPgClient(async (c) => {
    const res = await c.query("select count(*)::int as n from graphile_worker.jobs");
    return res.rows[0].n as number;
  });
}

/** graphile-worker: N no-op jobs made visible at once to an idle runner; jobs/s until all are done. */
export async function graphileThroughput(
  connectionString: string,
  jobs: number,
  concurrency = 16,
): Promise<number> {
  const utils = await makeWorkerUtils({ connectionString, logger: silent });
  let completed = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const runner = await run({
    connectionString,
    concurrency,
    maxPoolSize: concurrency + 2,
    noHandleSignals: true,
    logger: silent,
    crontab: "",
    taskList: { noop: async () => {} },
  });
  runner.events.on("job:complete", () => {
    if (++completed === jobs) allDone();
  });
  try {
    await sleep(300);
    await utils.withPgClient((c) =>
      c.query(
        `select count(*) from graphile_worker.add_jobs(array(
           select json_populate_record(null::graphile_worker.job_spec,
                  json_build_object('identifier', 'noop', 'payload', '{}'::json, 'max_attempts', 1))
           from generate_series(1, $1::int)))`,
        [jobs],
      ),
    );
    const t0 = performance.now();
    await done;
    // A job's completion is written after `job:complete` fires; the clock stops once every row
    // is gone.
    while ((await graphileBacklog(utils)) > 0) await sleep(2);
    const seconds = (performance.now() - t0) / 1000;
    return jobs / seconds;
  } finally {
    await runner.stop();
    await utils.release();
  }
}

/** BullMQ: `Queue.add` → processor starts, one Worker. */
export async function bullmqLatency(prefix: string, samples: number, concurrency = 4): Promise<Latency> {
  const name = `lat${Date.now()}`;
  const connection = redisConnection();
  let started: ((t: number) => void) | null = null;
  const queue = new Queue(name, { connection, prefix });
  const worker = new Worker(
    name,
    async () => {
      started?.(performance.now());
    },
    { connection, prefix, concurrency },
  );
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    await sleep(300);
    return await sequentialSamples(
      samples,
      () => queue.add("noop", {}, { attempts: 1 }),
      (fn) => {
        started = fn;
      },
    );
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** BullMQ: N no-op jobs added to a paused queue, then resumed under an idle Worker; jobs/s. */
export async function bullmqThroughput(prefix: string, jobs: number, concurrency = 16): Promise<number> {
  const name = `tp${Date.now()}`;
  const connection = redisConnection();
  const queue = new Queue(name, { connection, prefix });
  let completed = 0;
  let allDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const worker = new Worker(name, async () => {}, { connection, prefix, concurrency });
  worker.on("completed", () => {
    if (++completed === jobs) allDone();
  });
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    await queue.pause();
    for (let i = 0; i < jobs; i += 1000) {
      await queue.addBulk(
        Array.from({ length: Math.min(1000, jobs - i) }, () => ({
          name: "noop",
          data: {},
          opts: { attempts: 1 },
        })),
      );
    }
    await sleep(300);
    const t0 = performance.now();
    await queue.resume();
    await done;
    return jobs / ((performance.now() - t0) / 1000);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** Deletes every key under the prefix (obliterate leaves the odd bookkeeping key behind). */
async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(redisConnection());
  try {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

export interface CompetitorFigures {
  p50s: number[];
  p99s: number[];
  throughputs: number[];
}

/**
 * Runs both tools `runs` times on a fresh PostgreSQL database (dropped after) and a unique Redis
 * key prefix (deleted after).
 */
export async function measureCompetitors(opts: {
  runs: number;
  latencySamples: number;
  throughputJobs: number;
  progress?: (msg: string) => void;
}): Promise<{ graphile: CompetitorFigures; bullmq: CompetitorFigures }> {
  const graphile: CompetitorFigures = { p50s: [], p99s: [], throughputs: [] };
  const bullmq: CompetitorFigures = { p50s: [], p99s: [], throughputs: [] };
  const database = await createTestDatabase({ empty: true });
  const prefix = `skiffbench-cmp-${process.pid}-${Date.now()}`;
  try {
    const utils = await makeWorkerUtils({ connectionString: database.url, logger: silent });
    await utils.migrate().finally(() => utils.release());
    for (let r = 0; r < opts.runs; r++) {
      opts.progress?.(`graphile-worker and BullMQ, enqueue → start, run ${r + 1}/${opts.runs}`);
      const g = await graphileLatency(database.url, opts.latencySamples);
      graphile.p50s.push(g.p50);
      graphile.p99s.push(g.p99);
      const b = await bullmqLatency(prefix, opts.latencySamples);
      bullmq.p50s.push(b.p50);
      bullmq.p99s.push(b.p99);
    }
    for (let r = 0; r < opts.runs; r++) {
      opts.progress?.(`graphile-worker and BullMQ, no-op throughput, run ${r + 1}/${opts.runs}`);
      graphile.throughputs.push(await graphileThroughput(database.url, opts.throughputJobs));
      bullmq.throughputs.push(await bullmqThroughput(prefix, opts.throughputJobs));
    }
  } finally {
    await dropPrefix(prefix);
    await database.drop();
  }
  return { graphile, bullmq };
}

/** The two comparison rows: Skiff's medians against each tool's, as the ratio Skiff / other. */
export function comparisonRows(
  skiff: { p50: number; p99: number; throughput: number },
  other: { graphile: CompetitorFigures; bullmq: CompetitorFigures },
): { figure: string; target: string; measured: string; verdict: "pass" | "short" }[] {
  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const g = {
    p50: median(other.graphile.p50s),
    p99: median(other.graphile.p99s),
    tp: median(other.graphile.throughputs),
  };
  const b = {
    p50: median(other.bullmq.p50s),
    p99: median(other.bullmq.p99s),
    tp: median(other.bullmq.throughputs),
  };
  const latencyCell = (k: "p50" | "p99") =>
    `${k} ${ms(skiff[k])} vs ${ms(g[k])} (${ratio(skiff[k], g[k])}) vs ${ms(b[k])} (${ratio(skiff[k], b[k])})`;
  const jps = (v: number) => `${v.toFixed(0)} jobs/s`;
  return [
    {
      figure: "enqueue → start p50 / p99: Skiff vs graphile-worker vs BullMQ (ratio)",
      target: "Skiff ≤ both (ratio Skiff/other ≤ 1)",
      measured: `${latencyCell("p50")} / ${latencyCell("p99")}`,
      verdict:
        skiff.p50 <= g.p50 && skiff.p50 <= b.p50 && skiff.p99 <= g.p99 && skiff.p99 <= b.p99
          ? "pass"
          : "short",
    },
    {
      figure: "no-op throughput: Skiff vs graphile-worker vs BullMQ (ratio)",
      target: "Skiff ≥ both (ratio Skiff/other ≥ 1)",
      measured: `${jps(skiff.throughput)} vs ${jps(g.tp)} (${ratio(skiff.throughput, g.tp)}) vs ${jps(b.tp)} (${ratio(skiff.throughput, b.tp)})`,
      verdict: skiff.throughput >= g.tp && skiff.throughput >= b.tp ? "pass" : "short",
    },
  ];
}
