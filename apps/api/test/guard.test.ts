import { type Bus, createBus } from "@skiff/bus";
import type { SkiffEvent } from "@skiff/protocol";
import { openStore, type Store } from "@skiff/store";
import { createTestDatabase, describeWith, pgGate, type TestDatabase, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Api, buildApi } from "../src/index.ts";
import { createToken, startTestApi, type TestApi } from "./harness.ts";

/** The value of one Prometheus series (name with its labels, in the order prom-client prints them). */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && wanted.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** What every request meets first: who is calling, may they, and what is written down when not. */
describeWith(await pgGate(), "the guard in front of every route [pg]", () => {
  let t: TestApi;
  const published: SkiffEvent[] = [];
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
    t.api.ctx.events.listen((batch) => published.push(...batch.map((e) => e.event)));
  });
  afterAll(async () => {
    await t?.close();
  });

  it("401 tells a caller without a token how to send one, and one with a bad token that it is unknown", async () => {
    const none = await t.call("GET", "/v1/jobs", { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: "unauthorized" });
    expect(none.body.error.message).toContain("Authorization: Bearer <token>");
    expect(none.body.error.message).toContain("admin.token");
    const made = await t.call("GET", "/v1/jobs", { token: "skf_never-issued" });
    expect(made.status).toBe(401);
    expect(made.body.error.message).toBe("the token is unknown or revoked");
  });

  it("403 names the role needed and the caller's token and role", async () => {
    const res = await t.call("GET", "/v1/audit", { token: t.tokens.viewer });
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual(
      expect.objectContaining({
        code: "forbidden",
        message: 'this needs the operator role; your token "victor" has viewer',
      }),
    );
  });

  it("every refusal is audited with who, what, where from and which request, and published as it happens", async () => {
    const forbidden = await t.call("POST", "/v1/tokens?dry=1", {
      token: t.tokens.operator,
      body: { name: "x", role: "viewer" },
      headers: { "x-request-id": "guard-403" },
    });
    expect(forbidden.status).toBe(403);
    const anonymous = await t.call("GET", "/v1/fleet?watch=0", {
      token: null,
      headers: { "x-request-id": "guard-401" },
    });
    expect(anonymous.status).toBe(401);

    const [newest, before] = await t.store.listAudit({ limit: 2 });
    expect(before).toMatchObject({
      actor: "olivia",
      role: "operator",
      action: "POST /v1/tokens",
      target: "/v1/tokens",
      outcome: "denied",
      requestId: "guard-403",
      sourceIp: "127.0.0.1",
      details: { status: 403, required: "admin" },
    });
    expect(newest).toMatchObject({
      actor: "anonymous",
      role: "none",
      action: "GET /v1/fleet",
      target: "/v1/fleet",
      outcome: "denied",
      requestId: "guard-401",
      sourceIp: "127.0.0.1",
      details: { status: 401, required: "viewer" },
    });
    // Watchers of the audit stream (the console, `skiff audit --follow`) see both at once.
    await waitFor("both refusals on the event stream", () => {
      const seqs = published.filter((e) => e.name === "audit.appended").map((e) => (e.payload as any).seq);
      return seqs.includes(newest?.seq) && seqs.includes(before?.seq);
    });
  });

  it("a token's first use is recorded as its last use", async () => {
    const made = (await t.call("POST", "/v1/tokens", { body: { name: "used-once", role: "viewer" } })).body;
    const lastUsed = async () =>
      (await t.call("GET", "/v1/tokens")).body.items.find((x: { id: string }) => x.id === made.id).lastUsedAt;
    expect(await lastUsed()).toBeNull();
    expect((await t.call("GET", "/v1/whoami", { token: made.token })).status).toBe(200);
    // Recorded off the request's path, so wait for it (null means not yet).
    const at = await waitFor("lastUsedAt to be set", async () => (await lastUsed()) ?? undefined);
    expect(Date.parse(at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("a successful response carries the request id the caller sent", async () => {
    const res = await fetch(`${t.url}/v1/whoami`, {
      headers: { authorization: `Bearer ${t.tokens.viewer}`, "x-request-id": "trace-me-42" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("trace-me-42");
  });

  it("request durations are recorded in seconds per route template, unknown paths under one label", async () => {
    expect((await t.call("GET", "/v1/no-such-thing")).status).toBe(404);
    expect((await t.call("GET", "/v1/whoami", { token: t.tokens.viewer })).status).toBe(200);
    const text = (await t.call("GET", "/metrics")).body as string;
    const name = "skiff_http_request_duration_seconds";
    expect(metric(text, `${name}_count`, { route: "unmatched", status: "404" })).toBe(1);
    const whoami = { method: "GET", route: "/v1/whoami", status: "200" };
    const count = metric(text, `${name}_count`, whoami) ?? 0;
    const sum = metric(text, `${name}_sum`, whoami) ?? Number.NaN;
    expect(count).toBeGreaterThanOrEqual(1);
    // Seconds, not milliseconds: a whoami takes well under a second each.
    expect(sum / count).toBeLessThan(1);
    expect(sum).toBeGreaterThan(0);
  });
});

/** An API whose log lines the test can read, on its own database. */
describeWith(await pgGate(), "what the guard logs [pg]", () => {
  let database: TestDatabase;
  let store: Store;
  let bus: Bus;
  let api: Api;
  let url: string;
  let viewer: string;
  const lines: { level: number; msg: string; err?: { message?: string } }[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 4 });
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    bus = await createBus({ logger });
    api = buildApi({
      config: { host: "127.0.0.1", port: 0, failureLimitPerMinute: 1_000_000 },
      store,
      bus,
      logger,
    });
    url = await api.listen();
    viewer = await createToken(store, "viewer", "victor");
  });
  afterAll(async () => {
    await api?.shutdown();
    await bus?.close();
    await store?.close();
    await database?.drop();
  });
  const complaints = (from: number) => lines.slice(from).filter((l) => l.level >= 40);

  it("an audited refusal logs no warning or error", async () => {
    const from = lines.length;
    const res = await fetch(`${url}/v1/audit`, { headers: { authorization: `Bearer ${viewer}` } });
    expect(res.status).toBe(403);
    expect((await store.listAudit({ limit: 1 }))[0]).toMatchObject({ actor: "victor", outcome: "denied" });
    expect(complaints(from)).toEqual([]);
  });

  it("a refusal whose audit entry cannot be written is still refused, and logged as an error", async () => {
    // The database turns down audit rows for anonymous callers from here on.
    await store.db.query(
      "alter table audit_log add constraint test_refuse_anonymous check (actor <> 'anonymous') not valid",
    );
    try {
      const from = lines.length;
      const res = await fetch(`${url}/v1/jobs`);
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error.code).toBe("unauthorized");
      expect(complaints(from)).toEqual([
        expect.objectContaining({
          level: 50,
          msg: "could not audit a denied request",
          err: expect.objectContaining({ message: expect.stringContaining("test_refuse_anonymous") }),
        }),
      ]);
    } finally {
      await store.db.query("alter table audit_log drop constraint test_refuse_anonymous");
    }
  });
});
