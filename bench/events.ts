import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { createTestDatabase, TEST_REDIS_URL } from "@skiff/testkit";
import pg from "pg";
import { startApi } from "./lib.ts";
import { summarizeLatencies } from "./stream.ts";

/**
 * One subscriber thread: `n` streams of `/v1/events?topics=fleet` spread over the replicas' URLs.
 * Each event's payload carries the wall-clock time its transaction was sent (in `reason`); the
 * thread records now minus that for every event on every stream, and counts events per stream.
 * Threads, so that reading 100 streams does not queue behind one event loop.
 */
const SUBSCRIBER = `
const { parentPort, workerData } = require("node:worker_threads");
const { urls, token, n } = workerData;
const latencies = [];
const counts = new Array(n).fill(0);
const abort = new AbortController();
const now = () => performance.timeOrigin + performance.now();
async function follow(i) {
  const res = await fetch(urls[i % urls.length] + "/v1/events?topics=fleet", {
    headers: { authorization: "Bearer " + token }, signal: abort.signal,
  });
  const decoder = new TextDecoder();
  let buf = "";
  let ready = false;
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buf.indexOf("\\n\\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (block.includes("event: ready")) { if (!ready) { ready = true; parentPort.postMessage({ ready: i }); } continue; }
      const m = /"reason": ?"t=([0-9.]+)"/.exec(block);
      if (m) { latencies.push(now() - Number(m[1])); counts[i]++; }
    }
  }
}
for (let i = 0; i < n; i++) follow(i).catch(() => {});
parentPort.on("message", () => {
  parentPort.postMessage({ latencies, counts });
  abort.abort();
});
`;

/**
 * Commit → delivery through the event log: two `skiff api` replicas on PostgreSQL and Redis,
 * `subscribers` SSE clients split between them, and a writer committing `perSecond` events (ten
 * per transaction, as a busy API's changes would) straight into the log for `seconds`. Each
 * event's latency is from just before its transaction was sent to its arrival at a subscriber,
 * measured on every subscriber.
 */
export async function eventFanout(subscribers: number, perSecond: number, seconds: number) {
  const database = await createTestDatabase({ empty: true });
  const home = mkdtempSync(join(tmpdir(), "skiff-bench-events-"));
  const env = {
    DATABASE_URL: database.url,
    REDIS_URL: TEST_REDIS_URL,
    SKIFF_BUS_PREFIX: `events${process.pid}`,
  };
  const first = await startApi({ command: "api", env, home });
  const second = await startApi({ command: "api", env, home });
  const writer = new pg.Client({ connectionString: database.url });
  await writer.connect();
  const threads = 4;
  const workers = Array.from(
    { length: threads },
    (_, k) =>
      new Worker(SUBSCRIBER, {
        eval: true,
        workerData: {
          urls: [first.url, second.url],
          token: first.admin,
          n: Math.floor(subscribers / threads) + (k < subscribers % threads ? 1 : 0),
        },
      }),
  );
  try {
    let ready = 0;
    await new Promise<void>((resolve) => {
      for (const w of workers)
        w.on("message", (m) => {
          if ("ready" in m && ++ready === subscribers) resolve();
        });
    });
    const batch = 10;
    const interval = (batch / perSecond) * 1000;
    const t0 = performance.now();
    let sent = 0;
    while (performance.now() - t0 < seconds * 1000) {
      const at = performance.timeOrigin + performance.now();
      const payloads = Array.from({ length: batch }, () => JSON.stringify({ reason: `t=${at.toFixed(3)}` }));
      // As a process without a relay of its own (the controller) writes: the change, then a NOTIFY.
      await writer.query(
        "insert into events (name, payload) select 'fleet.changed', p from unnest($1::jsonb[]) as p",
        [payloads],
      );
      await writer.query("select pg_notify('skiff_events', '')");
      sent += batch;
      const wait = t0 + (sent / perSecond) * 1000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, Math.max(0, wait - interval / 10)));
    }
    const rate = sent / ((performance.now() - t0) / 1000);
    // Let the last batch arrive.
    await new Promise((r) => setTimeout(r, 2_000));
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<{ latencies: number[]; counts: number[] }>((resolve) => {
            w.on("message", (m) => {
              if ("latencies" in m) resolve(m);
            });
            w.postMessage("stop");
          }),
      ),
    );
    const counts = results.flatMap((r) => r.counts);
    return {
      ...summarizeLatencies(results.flatMap((r) => r.latencies)),
      rate,
      sent,
      complete: counts.filter((c) => c === sent).length,
      subscribers,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    await writer.end();
    await second.stop();
    await first.stop();
    rmSync(home, { recursive: true, force: true });
    await database.drop();
  }
}
