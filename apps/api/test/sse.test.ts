import { once } from "node:events";
import net from "node:net";
import { waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hello, openSse, registerAgent, type SseClient, startTestApi, type TestApi } from "./harness.ts";

const MAX_BUFFER = 16 * 1024;
const STALL_MS = 500;

/**
 * A client that sends the request, reads up to `readyMarker` (so the stream is known to be live)
 * and then never reads again: the kernel buffers fill and the server has to decide what to do.
 */
async function openStalledClient(t: TestApi, path: string, readyMarker: string) {
  const { hostname, port } = new URL(t.url);
  const serverSide = once(t.api.app.server, "connection") as Promise<[net.Socket]>;
  const socket = net.connect({ host: hostname, port: Number(port) });
  await once(socket, "connect");
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${t.tokens.viewer}\r\n` +
      "Accept: text/event-stream\r\n\r\n",
  );
  let head = "";
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      head += chunk.toString("utf8");
      if (!head.includes(readyMarker)) return;
      socket.off("data", onData);
      socket.off("error", reject);
      socket.pause();
      resolve();
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
  expect(head).toMatch(/^HTTP\/1\.1 200/);
  const [server] = await serverSide;
  expect(server.remotePort).toBe(socket.localPort);
  return { socket, server };
}

/** Resumes a stalled client and resolves with what it still gets once the server has closed its connection. */
async function connectionClosedByServer(socket: net.Socket): Promise<string> {
  const chunks: Buffer[] = [];
  const closed = once(socket, "close");
  socket.on("error", () => {}); // a reset is one way of being cut off
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.resume();
  await closed;
  return Buffer.concat(chunks).toString("utf8");
}

/** A job claimed by a fresh agent, with helpers to upload log lines and finish it as the agent would. */
async function runningJob(t: TestApi, queue: string) {
  const agentId = await registerAgent(t, `agent-${queue}`, { queue });
  const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) })).body;
  const claim = await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } });
  const epoch = claim.body.jobs[0].epoch;
  const text = (n: number, size: number) => `${n} `.padEnd(size, "x");
  return {
    job,
    async upload(firstSeq: number, count: number, size: number) {
      const events = Array.from({ length: count }, (_, i) => ({
        type: "log",
        seq: firstSeq + i,
        step: 0,
        stream: "stdout",
        text: text(firstSeq + i, size),
      }));
      const res = await t.call("POST", `/v1/agent/jobs/${job.id}/events`, {
        token: t.tokens.agent,
        body: { agentId, epoch, events },
      });
      expect(res).toMatchObject({ status: 200, body: { accepted: count } });
    },
    async finish() {
      const res = await t.call("POST", `/v1/agent/jobs/${job.id}/finish`, {
        token: t.tokens.agent,
        body: { agentId, epoch, outcome: "succeeded", exitCode: 0 },
      });
      expect(res.status).toBe(200);
    },
  };
}

describe("SSE streams [pglite]", () => {
  let t: TestApi;
  const open: SseClient[] = [];
  const sse = async (path: string, headers?: Record<string, string>) => {
    const c = await openSse(`${t.url}${path}`, t.tokens.viewer, { headers });
    expect(c.status).toBe(200);
    open.push(c);
    return c;
  };
  const ready = (c: SseClient) => c.waitUntil("ready", (x) => x.events.some((e) => e.event === "ready"));

  beforeAll(async () => {
    t = await startTestApi({
      adapter: "pglite",
      config: {
        sseMaxBufferBytes: MAX_BUFFER,
        sseStallMs: STALL_MS,
        sseKeepAliveMs: 200,
        bodyLimitBytes: 32 * 1024 * 1024,
        logCapBytes: 64 * 1024 * 1024,
      },
    });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await t?.close();
  });

  it("a client subscribed to agents gets agent.registered and none of the job events", async () => {
    const agents = await sse("/v1/events?topics=agents");
    const jobs = await sse("/v1/events?topics=jobs");
    await Promise.all([ready(agents), ready(jobs)]);
    const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("topics") })).body;
    const agentId = await registerAgent(t, "topical");

    await jobs.waitUntil("job.created", (c) => c.events.some((e) => e.data.jobId === job.id));
    // The bus keeps order, so once the later agent event is here the earlier job events would be too.
    await agents.waitUntil("agent.registered", (c) =>
      c.events.some((e) => e.event === "agent.registered" && e.data.agentId === agentId),
    );
    expect(agents.events.filter((e) => !e.event.startsWith("agent.")).map((e) => e.event)).toEqual(["ready"]);
    expect(agents.events.find((e) => e.event === "agent.registered")?.data).toMatchObject({
      agentId,
      name: "topical",
    });
    expect(jobs.events.filter((e) => e.event.startsWith("agent."))).toEqual([]);
    expect(jobs.events.map((e) => e.event)).toEqual(expect.arrayContaining(["job.created", "job.state"]));
    // A state event says what a console shows beside the state, so it need not fetch the job.
    expect(jobs.events.find((e) => e.event === "job.state" && e.data.jobId === job.id)?.data).toEqual({
      jobId: job.id,
      state: "queued",
      queue: job.queue,
      agentId: null,
      epoch: job.epoch,
      attempt: job.attempt,
      maxAttempts: job.maxAttempts,
      exitCode: null,
      startedAt: null,
      finishedAt: null,
    });
  });

  it("a job's state events carry its stored start and finish times, not the time they were told", async () => {
    const jobs = await sse("/v1/events?topics=jobs");
    await ready(jobs);
    const run = await runningJob(t, "times");
    await run.upload(1, 1, 10); // the first output starts the job
    await run.finish();
    const stored = (await t.call("GET", `/v1/jobs/${run.job.id}`, { token: t.tokens.viewer })).body;
    expect(stored.startedAt).toEqual(expect.any(String));
    const mine = () => jobs.events.filter((e) => e.event === "job.state" && e.data.jobId === run.job.id);
    await jobs.waitUntil("the finish", () => mine().some((e) => e.data.state === "succeeded"));
    const byState = new Map(mine().map((e) => [e.data.state, e.data]));
    expect(byState.get("queued")).toMatchObject({ startedAt: null, finishedAt: null });
    expect(byState.get("running")).toMatchObject({ startedAt: stored.startedAt, finishedAt: null });
    expect(byState.get("succeeded")).toMatchObject({
      startedAt: stored.startedAt,
      finishedAt: stored.finishedAt,
    });
  });

  it("a client that reconnects with Last-Event-ID gets the events it missed, once", async () => {
    const first = await sse("/v1/events?topics=jobs");
    await ready(first);
    const seen = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("resume") })).body;
    await first.waitUntil("the first job", (c) =>
      c.events.some((e) => e.event === "job.state" && e.data.jobId === seen.id),
    );
    const lastId = first.events.at(-1)?.id;
    expect(lastId).toMatch(/^\d+$/);
    first.close();

    const missed = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("resume") }))
      .body;
    const resumed = await sse("/v1/events?topics=jobs", { "last-event-id": String(lastId) });
    await ready(resumed);

    // The missed events come first, then `ready`, then the live feed.
    const replayed = resumed.events.slice(
      0,
      resumed.events.findIndex((e) => e.event === "ready"),
    );
    expect(replayed.map((e) => [e.event, e.data.jobId])).toEqual([
      ["job.created", missed.id],
      ["job.state", missed.id],
    ]);
    expect(replayed.every((e) => Number(e.id) > Number(lastId))).toBe(true);
  });

  it("a client that stops reading /v1/events is cut off while another gets every event", async () => {
    const fast = await sse("/v1/events?topics=jobs");
    await ready(fast);
    const before = t.api.ctx.sse.size;
    const slow = await openStalledClient(t, "/v1/events?topics=jobs", "event: ready");
    expect(t.api.ctx.sse.size).toBe(before + 1);

    // Events written straight into the event log, 40 to a statement: the API's own requests would
    // take minutes to make the megabytes needed to fill the kernel's socket buffers.
    const name = "n".repeat(200);
    let published = 0;
    let publishedBytes = 0;
    let mostQueued = 0;
    const flood = (c: SseClient) => c.events.filter((e) => e.data.queue === "flood").length;
    const publishBatch = async () => {
      const payloads = Array.from({ length: 40 }, () => ({
        jobId: `job_flood${published++}`,
        name,
        queue: "flood",
      }));
      for (const p of payloads) publishedBytes += JSON.stringify(p).length;
      await t.store.db.query(
        "insert into events (name, payload) select 'job.created', p from unnest($1::jsonb[]) with ordinality as x(p, n) order by n",
        [payloads.map((p) => JSON.stringify(p))],
      );
      // Written behind the store's back: wake the relay as the store does after its own writes.
      t.api.ctx.events.wake();
      // The fast client keeps up: the next batch goes out only once it has this one.
      await fast.waitUntil(`${published} flood events`, (c) => flood(c) === published);
      mostQueued = Math.max(mostQueued, slow.server.writableLength);
    };
    while (!slow.server.destroyed) {
      if (publishedBytes > 64 * 1024 * 1024) throw new Error("the stalled client was never cut off");
      await publishBatch();
    }
    expect(t.api.ctx.sse.size).toBe(before);
    // What the server held for the stalled client never grew past the limit (plus one event), though
    // far more than that was published while it was connected.
    expect(mostQueued).toBeLessThanOrEqual(MAX_BUFFER + 1024);
    expect(publishedBytes).toBeGreaterThan(10 * MAX_BUFFER);
    expect(slow.server.writableLength).toBe(0);

    // The fast client is unaffected and keeps getting everything, in order and without gaps.
    for (let i = 0; i < 10; i++) await publishBatch();
    const ids = fast.events.filter((e) => e.data.queue === "flood").map((e) => e.data.jobId);
    expect(ids).toEqual(Array.from({ length: published }, (_, i) => `job_flood${i}`));
    // The stalled client, when it finally reads, finds its connection closed: what the kernel held
    // for it, then nothing of what was published after the cut.
    const got = await connectionClosedByServer(slow.socket);
    expect(got).toMatch(/"jobId": ?"job_flood0"/);
    expect(got).not.toMatch(new RegExp(`"jobId": ?"job_flood${published - 1}"`));
  });

  it("a log follower catching up on a backlog many times sseMaxBufferBytes gets it in one connection", async () => {
    const { job, upload, finish } = await runningJob(t, "backlog");
    await upload(1, 1000, 8000);
    await finish();
    const follower = await sse(`/v1/jobs/${job.id}/logs/stream`);
    expect(await follower.closed).toBe("end");
    const lines = follower.events.filter((e) => e.event === "line");
    expect(lines.map((e) => e.data.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(follower.events.at(-1)).toMatchObject({ event: "end", data: { state: "succeeded" } });
  });

  it("a log follower that stops reading is cut off after sseStallMs; another gets every line", async () => {
    const { job, upload, finish } = await runningJob(t, "stall");
    const fast = await sse(`/v1/jobs/${job.id}/logs/stream`);
    const before = t.api.ctx.sse.size;
    const slow = await openStalledClient(t, `/v1/jobs/${job.id}/logs/stream`, "retry:");
    expect(t.api.ctx.sse.size).toBe(before + 1);

    let mostQueued = 0;
    for (let batch = 0; batch < 10; batch++) {
      await upload(batch * 100 + 1, 100, 8000);
      mostQueued = Math.max(mostQueued, slow.server.writableLength);
      await fast.waitUntil(`line ${(batch + 1) * 100}`, (c) =>
        c.events.some((e) => e.event === "line" && e.data.seq === (batch + 1) * 100),
      );
    }
    await waitFor("the stalled follower to be cut off", () => slow.server.destroyed, STALL_MS * 20);
    expect(t.api.ctx.sse.size).toBe(before);
    // Its log waited in the database, not in memory: the server held about one socket buffer for it.
    expect(mostQueued).toBeLessThanOrEqual(64 * 1024 + 8 * 1024);

    await finish();
    expect(await fast.closed).toBe("end");
    const seqs = fast.events.filter((e) => e.event === "line").map((e) => e.data.seq);
    expect(seqs).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    const got = await connectionClosedByServer(slow.socket);
    expect(got).toMatch(/"seq":1[,}]/);
    expect(got).not.toMatch(/"seq":1000[,}]/);
  });

  it("keep-alive comments arrive on a quiet stream at the configured interval", async () => {
    const quiet = await sse("/v1/events?topics=fleet");
    const started = Date.now();
    await quiet.waitUntil(
      "three keep-alives",
      (c) => c.comments.filter((x) => x === "keep-alive").length >= 3,
    );
    // 200 ms apart: three of them take at least ~400 ms and far less than the 15 s default.
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(quiet.events.map((e) => e.event)).toEqual(["ready"]);
    quiet.close();
  });
});
