import { allOf, describeWith, pgGate, redisGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hello,
  openSse,
  readSse,
  registerAgent,
  type SseClient,
  startReplicaPair,
  startTestApi,
  type TestApi,
} from "./harness.ts";

const pg = await pgGate();
const redis = await redisGate();
const both = allOf(pg, redis);

const ids = (events: { id?: string; event?: string }[]) =>
  events
    .filter((e) => e.id !== undefined && e.event !== "ready" && e.event !== "reset")
    .map((e) => Number(e.id));
const contiguous = (xs: number[]) => xs.every((x, i) => i === 0 || x === (xs[i - 1] ?? 0) + 1);

describeWith(
  both,
  "the event log: one gap-free order across replicas, resumable anywhere [pg, redis]",
  () => {
    let pair: Awaited<ReturnType<typeof startReplicaPair>> | undefined;
    let a: TestApi;
    let b: TestApi;
    const streams: SseClient[] = [];

    beforeAll(async () => {
      pair = await startReplicaPair("eventlog");
      ({ a, b } = pair);
    });
    afterAll(async () => {
      for (const s of streams) s.close();
      await pair?.close();
    });

    const watch = async (t: TestApi, headers: Record<string, string> = {}) => {
      const s = await openSse(`${t.url}/v1/events`, t.tokens.admin, { headers });
      streams.push(s);
      await s.waitUntil("ready", (c) => c.events.some((e) => e.event === "ready"));
      return s;
    };

    it("writes through both replicas at once reach subscribers of each with the same ids, gap-free, each once", async () => {
      const onA = await watch(a);
      const onB = await watch(b);
      const agentId = await registerAgent(a, "order-agent", { queue: "order" });
      const submitted = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (i % 2 === 0 ? a : b)
            .call("POST", "/v1/jobs", { body: hello("order") })
            .then((r) => r.body.id as string),
        ),
      );
      // And a claim through b that takes some of them, so job events come from both replicas' writes.
      const claim = await b.call("POST", "/v1/agent/claim", {
        token: a.tokens.agent,
        body: { agentId, max: 50, waitMs: 0 },
      });
      expect(claim.body.jobs).toHaveLength(50);
      const created = (c: SseClient) => c.events.filter((e) => e.event === "job.created").length;
      await onA.waitUntil("200 job.created", (c) => created(c) === 200);
      await onB.waitUntil("200 job.created", (c) => created(c) === 200);
      await onA.waitUntil(
        "50 assigned",
        (c) => c.events.filter((e) => e.data?.state === "assigned").length === 50,
      );
      await onB.waitUntil(
        "50 assigned",
        (c) => c.events.filter((e) => e.data?.state === "assigned").length === 50,
      );
      // From the first event both were subscribed for, the two replicas sent the same ids.
      const from = Math.max(ids(onA.events)[0] ?? 0, ids(onB.events)[0] ?? 0);
      const seenA = ids(onA.events).filter((x) => x >= from);
      const seenB = ids(onB.events).filter((x) => x >= from);
      expect(seenA.length).toBeGreaterThan(600);
      expect(seenA).toEqual(seenB);
      expect(contiguous(seenA), `ids with a gap or a repeat: ${seenA.join(",")}`).toBe(true);
      expect(new Set(seenA).size).toBe(seenA.length);
      // Each job's own events in the order they happened: created, queued, then (some) assigned.
      for (const id of submitted) {
        const mine = onA.events
          .filter((e) => e.data?.jobId === id)
          .map((e) => `${e.event}:${e.data.state ?? ""}`);
        expect(mine.slice(0, 2)).toEqual(["job.created:", "job.state:queued"]);
        if (mine.length > 2) expect(mine.slice(2)).toEqual(["job.state:assigned"]);
      }
      // Each audit entry is on the stream once, and the stream holds every entry.
      const audited = onA.events.filter((e) => e.event === "audit.appended").map((e) => e.data.seq);
      const listed = (await a.call("GET", "/v1/audit?limit=1000")).body.items.map(
        (e: { seq: number }) => e.seq,
      );
      expect([...audited].sort((x, y) => x - y)).toEqual(
        listed.filter((s: number) => s >= Math.min(...audited)).sort((x: number, y: number) => x - y),
      );
    });

    it("a client that reconnects to the other replica with Last-Event-ID gets exactly what it missed, in order, once", async () => {
      const first = await watch(a);
      await a.call("POST", "/v1/jobs", { body: hello("resume") });
      await first.waitUntil("the first job", (c) => c.events.some((e) => e.event === "job.created"));
      const last = Math.max(...ids(first.events));
      first.close();
      // Missed while away: changes through both replicas.
      for (let i = 0; i < 10; i++) await (i % 2 ? a : b).call("POST", "/v1/jobs", { body: hello("resume") });
      await waitFor("a's feed to hold them", () => a.api.ctx.events.lastId >= last + 30);
      const resumed = await readSse(
        `${b.url}/v1/events`,
        b.tokens.admin,
        (e) => e.some((x) => x.event === "ready"),
        {
          headers: { "last-event-id": String(last) },
        },
      );
      const got = ids(resumed);
      expect(got[0]).toBe(last + 1);
      expect(contiguous(got)).toBe(true);
      expect(resumed.filter((e) => e.event === "job.created")).toHaveLength(10);
      // What a fresh reader of the log would see from there, nothing more or less.
      const log = await a.store.eventsAfter(last, 10_000);
      expect(got).toEqual(log.map((e) => e.seq).filter((s) => s <= (got.at(-1) ?? 0)));
      expect(resumed.find((e) => e.event === "ready")?.data.lastEventId).toBe(got.at(-1));
    });

    it("a client behind the kept window, or with an id this log never gave, is told to reset and reload", async () => {
      await a.call("POST", "/v1/jobs", { body: hello("prune") });
      await waitFor("the log to have moved", () => a.api.ctx.events.lastId > 5);
      // Age the oldest events past the window, and prune as the feed does every minute.
      await a.store.db.query("update events set at = now() - interval '2 hours' where seq <= 5");
      expect(await a.store.pruneEvents(3600, 0)).toBe(5);
      const behind = await readSse(
        `${b.url}/v1/events`,
        b.tokens.admin,
        (e) => e.some((x) => x.event === "ready"),
        {
          headers: { "last-event-id": "2" },
        },
      );
      expect(behind[0]?.event).toBe("reset");
      // Right at the edge of what is kept: resumable.
      const edge = await readSse(
        `${b.url}/v1/events`,
        b.tokens.admin,
        (e) => e.some((x) => x.event === "ready"),
        {
          headers: { "last-event-id": "5" },
        },
      );
      expect(edge[0]?.event).not.toBe("reset");
      expect(ids(edge)[0]).toBe(6);
      const future = await readSse(
        `${a.url}/v1/events`,
        a.tokens.admin,
        (e) => e.some((x) => x.event === "ready"),
        {
          headers: { "last-event-id": "99999999" },
        },
      );
      expect(future[0]?.event).toBe("reset");
    });
  },
);

describe("the event log on PGlite: every change's events in its own transaction [pglite]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pglite" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a change that fails records none of its events, and the log numbers what committed with no gap", async () => {
    await t.api.ctx.events.caughtUp();
    const before = t.api.ctx.events.lastId;
    // A job the store refuses halfway (its insert fails): neither the job nor any event remains.
    await expect(
      t.store.db.tx(async (q) => {
        await q.query("insert into events (name, payload) values ('job.created', '{}'::jsonb)");
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    const res = await t.call("POST", "/v1/jobs", { body: hello("lite") });
    expect(res.status).toBe(201);
    await waitFor("the submit's events", () => t.api.ctx.events.lastId >= before + 3);
    const log = await t.store.eventsAfter(before, 100);
    expect(log.map((e) => e.name)).toEqual(["job.created", "job.state", "audit.appended"]);
    expect(log.map((e) => e.seq)).toEqual([before + 1, before + 2, before + 3]);
    expect(log[1]?.payload).toMatchObject({
      jobId: res.body.id,
      state: "queued",
      attempt: 0,
      maxAttempts: res.body.maxAttempts,
    });
  });

  it("an agent heartbeating many times a second becomes a heartbeat event every few seconds, and at once when its activity changes", async () => {
    const agentId = await registerAgent(t, "chatty", { queue: "lite" });
    await t.api.ctx.events.caughtUp();
    const from = t.api.ctx.events.lastId;
    const beat = (status: "idle" | "busy") =>
      t.call("POST", "/v1/agent/heartbeat", {
        token: t.tokens.agent,
        body: { agentId, status, running: [], resources: { cpuPercent: 1 } },
      });
    for (let i = 0; i < 20; i++) expect((await beat("idle")).status).toBe(200);
    expect((await beat("busy")).status).toBe(200);
    await t.api.ctx.events.caughtUp();
    const log = (await t.store.eventsAfter(from, 1000)).filter((e) => e.name.startsWith("agent."));
    // The registration's own told nothing yet: the first heartbeat is told, the next 19 are not,
    // the change to busy is told with its status.
    expect(log.map((e) => `${e.name}:${(e.payload as { activity: string }).activity}`)).toEqual([
      "agent.heartbeat:idle",
      "agent.heartbeat:busy",
      "agent.status:busy",
    ]);
  });
});

describe("resuming far behind, viewers, and clients that leave early [pglite]", () => {
  let t: TestApi;
  beforeAll(async () => {
    // Small enough that the backlog below is several times it, large enough for one live batch.
    t = await startTestApi({ adapter: "pglite", config: { sseMaxBufferBytes: 256 * 1024 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a backlog many times sseMaxBufferBytes is resumed in one connection, paced, then ready with its id", async () => {
    await t.api.ctx.events.caughtUp();
    const from = t.api.ctx.events.lastId;
    const payloads = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ jobId: `job_far${i}`, name: "x".repeat(300), queue: "far" }),
    );
    await t.store.db.query(
      "insert into events (name, payload) select 'job.created', p from unnest($1::jsonb[]) with ordinality as x(p, n) order by n",
      [payloads],
    );
    await t.api.ctx.events.caughtUp();
    // Nearly 1 MB behind: written at once, it used to cut the client off on every try.
    const got = await readSse(
      `${t.url}/v1/events`,
      t.tokens.admin,
      (e) => e.some((x) => x.event === "ready"),
      {
        headers: { "last-event-id": String(from) },
        timeoutMs: 30_000,
      },
    );
    const created = got.filter((e) => e.event === "job.created");
    expect(created).toHaveLength(3000);
    expect(ids(created)).toEqual(Array.from({ length: 3000 }, (_, i) => from + 1 + i));
    const ready = got.find((e) => e.event === "ready");
    expect(ready?.id).toBe(String(from + 3000));
  });

  it("a viewer's stream leaves out the audit topic, which needs the operator role", async () => {
    const s = await openSse(`${t.url}/v1/events?topics=jobs,audit`, t.tokens.viewer);
    try {
      await s.waitUntil("ready", (c) => c.events.some((e) => e.event === "ready"));
      expect(s.events.find((e) => e.event === "ready")?.data.topics).toEqual(["jobs"]);
      await t.call("POST", "/v1/jobs", { body: hello("viewer") });
      await s.waitUntil("the job", (c) => c.events.some((e) => e.event === "job.created"));
      await t.api.ctx.events.caughtUp();
      expect(s.events.filter((e) => e.event === "audit.appended")).toEqual([]);
      // Nor through a resume from the start of the log.
      const resumed = await readSse(
        `${t.url}/v1/events`,
        t.tokens.viewer,
        (e) => e.some((x) => x.event === "ready"),
        {
          headers: { "last-event-id": "0" },
        },
      );
      expect(resumed.filter((e) => e.event === "audit.appended")).toEqual([]);
    } finally {
      s.close();
    }
  });

  it("a client that hangs up while its request is being authorised holds no stream slot afterwards", async () => {
    const { createServer } = await import("node:http");
    const { connect } = await import("node:net");
    const { SseRegistry, SseStream } = await import("../src/sse.ts");
    const registry = new SseRegistry();
    let made = null as InstanceType<typeof SseStream> | null;
    // The stream is opened only once the client has gone, as when authorising took longer than
    // the client stayed: no "close" event will follow.
    const server = createServer((_req, res) => {
      res.on("close", () => {
        setImmediate(() => {
          made = new SseStream(res, { keepAliveMs: 60_000, maxBuffer: 1 << 20 });
          registry.add(made, "tok_early");
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const socket = connect(port, "127.0.0.1", () => {
      socket.write("GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n");
      setTimeout(() => socket.destroy(), 50);
    });
    const stream = await waitFor("the stream to be made", () => made ?? undefined);
    expect(stream.isClosed).toBe(true);
    expect(registry.openFor("tok_early")).toBe(0);
    expect(registry.size).toBe(0);
    await new Promise((r) => server.close(r));
  });
});
