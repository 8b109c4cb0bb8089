import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hello, openSse, registerAgent, type SseClient, startTestApi, type TestApi } from "./harness.ts";

/** A job claimed by a fresh agent, and a way to upload numbered lines as that agent. */
async function runningJob(t: TestApi, queue: string) {
  const agentId = await registerAgent(t, `agent-${queue}`, { queue });
  const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) })).body;
  const claim = await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } });
  const epoch = claim.body.jobs[0].epoch;
  const agent = (path: string, body: unknown) =>
    t.call("POST", `/v1/agent/jobs/${job.id}/${path}`, {
      token: t.tokens.agent,
      body: { agentId, epoch, ...(body as object) },
    });
  return {
    job,
    async upload(firstSeq: number, count: number) {
      const events = Array.from({ length: count }, (_, i) => ({
        type: "log",
        seq: firstSeq + i,
        step: 0,
        stream: "stdout",
        text: `line ${firstSeq + i}`,
      }));
      expect(await agent("events", { events })).toMatchObject({ status: 200, body: { accepted: count } });
    },
    async finish() {
      expect((await agent("finish", { outcome: "succeeded", exitCode: 0 })).status).toBe(200);
    },
  };
}

describe("many followers of one job's log [pglite]", () => {
  let t: TestApi;
  const open: SseClient[] = [];
  beforeAll(async () => {
    t = await startTestApi({
      adapter: "pglite",
      config: { sseMaxStreamsPerToken: 1_000, sseKeepAliveMs: 60_000 },
    });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await t?.close();
  });

  it("200 followers each get every line once, in order, while the store is read once per upload, not once per follower", async () => {
    const { job, upload, finish } = await runningJob(t, "busy");
    await upload(1, 50); // a backlog every follower reads itself first
    const store = t.api.ctx.store;
    const listLogs = store.listLogs.bind(store);
    let reads = 0;
    store.listLogs = (...args: Parameters<typeof listLogs>) => {
      reads++;
      return listLogs(...args);
    };
    try {
      const followers = 200;
      for (let i = 0; i < followers; i++) {
        const c = await openSse(`${t.url}/v1/jobs/${job.id}/logs/stream`, t.tokens.viewer);
        expect(c.status).toBe(200);
        open.push(c);
      }
      await Promise.all(
        open.map((c) =>
          c.waitUntil("the backlog", (x) => x.events.filter((e) => e.event === "line").length === 50, 30_000),
        ),
      );
      const readsBefore = reads;
      const uploads = 20;
      for (let u = 0; u < uploads; u++) {
        await upload(51 + u * 10, 10);
        await Promise.all(
          open.map((c) =>
            c.waitUntil(
              `line ${60 + u * 10}`,
              (x) => x.events.some((e) => e.event === "line" && e.data.seq === 60 + u * 10),
              30_000,
            ),
          ),
        );
      }
      // The shared reader reads each upload once (twice when a wake-up lands during a read); a
      // follower of its own would have read each one 200 times.
      expect(reads - readsBefore).toBeLessThanOrEqual(uploads * 3);
      await finish();
      const want = Array.from({ length: 250 }, (_, i) => i + 1);
      for (const c of open) {
        expect(await c.closed).toBe("end");
        expect(c.events.filter((e) => e.event === "line").map((e) => e.data.seq)).toEqual(want);
        expect(c.events.at(-1)).toMatchObject({ event: "end", data: { state: "succeeded", exitCode: 0 } });
      }
      expect(t.api.ctx.logTails.size).toBe(0);
    } finally {
      store.listLogs = listLogs;
    }
  });

  it("a follower claiming a position past every line cannot skew the shared reader for the others", async () => {
    const { job, upload, finish } = await runningJob(t, "skewed");
    await upload(1, 5);
    const liar = await openSse(
      `${t.url}/v1/jobs/${job.id}/logs/stream?after=9007199254740991`,
      t.tokens.viewer,
    );
    open.push(liar);
    await new Promise((r) => setTimeout(r, 300));
    const honest = await openSse(`${t.url}/v1/jobs/${job.id}/logs/stream`, t.tokens.viewer);
    open.push(honest);
    await upload(6, 5);
    await honest.waitUntil("line 10", (c) => c.events.some((e) => e.event === "line" && e.data.seq === 10));
    await finish();
    expect(await honest.closed).toBe("end");
    expect(honest.events.filter((e) => e.event === "line").map((e) => e.data.seq)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(await liar.closed).toBe("end");
    expect(liar.events.filter((e) => e.event === "line")).toEqual([]);
  });

  it("a follower that joins after the job ended gets the whole log and the end", async () => {
    const { job, upload, finish } = await runningJob(t, "ended");
    await upload(1, 1500);
    await finish();
    const c = await openSse(`${t.url}/v1/jobs/${job.id}/logs/stream`, t.tokens.viewer);
    open.push(c);
    expect(await c.closed).toBe("end");
    expect(c.events.filter((e) => e.event === "line").length).toBe(1500);
    expect(c.events.at(-1)).toMatchObject({ event: "end", data: { state: "succeeded" } });
  });
});

describe("streams per token [pglite]", () => {
  let t: TestApi;
  const open: SseClient[] = [];
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pglite", config: { sseMaxStreamsPerToken: 3 } });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await t?.close();
  });

  it("past sseMaxStreamsPerToken a token gets 429 naming the limit; other tokens are not affected; a closed stream frees its place", async () => {
    const { job } = await runningJob(t, "limited");
    const paths = ["/v1/events", `/v1/jobs/${job.id}/logs/stream`, "/v1/events?topics=jobs"];
    for (const path of paths) {
      const c = await openSse(`${t.url}${path}`, t.tokens.viewer);
      expect(c.status).toBe(200);
      open.push(c);
    }
    const refused = await fetch(`${t.url}/v1/jobs/${job.id}/logs/stream`, {
      headers: { authorization: `Bearer ${t.tokens.viewer}` },
    });
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("rate_limited");
    expect(body.error.message).toMatch(/already holds 3 open streams.*sseMaxStreamsPerToken/);

    const other = await openSse(`${t.url}/v1/events`, t.tokens.operator);
    expect(other.status).toBe(200);
    open.push(other);

    open[0]?.close();
    await open[0]?.closed;
    let again: SseClient | undefined;
    for (let i = 0; i < 50 && again?.status !== 200; i++) {
      again?.close();
      await new Promise((r) => setTimeout(r, 20));
      again = await openSse(`${t.url}/v1/events`, t.tokens.viewer);
    }
    expect(again?.status).toBe(200);
    if (again) open.push(again);
  });
});
