import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sampleRequest } from "./fixtures.ts";
import { startTestApi, type TestApi } from "./harness.ts";

const OK = "ok";
type Expect = typeof OK | 401 | 403;
const CALLERS = ["anonymous", "unknown token", "viewer", "operator", "admin", "agent"] as const;
type Caller = (typeof CALLERS)[number];
/** The name each caller is audited under (the harness names its tokens). */
const ACTORS: Record<Caller, string> = {
  anonymous: "anonymous",
  "unknown token": "anonymous",
  viewer: "victor",
  operator: "olivia",
  admin: "root",
  agent: "agent-pool",
};

/**
 * What each caller gets from each route, written out by hand. It is deliberately not computed from
 * `roleAllows` (or from the routes' declared roles): a bug in the hierarchy must show up here as a
 * 2xx where this table says 403. "ok" is any 2xx. A new route fails the test until it has a row.
 *
 *                                    anonymous  unknown  viewer  operator  admin  agent
 */
const TABLE: Record<string, [Expect, Expect, Expect, Expect, Expect, Expect]> = {
  "GET /v1/whoami": [401, 401, OK, OK, OK, 403],
  "GET /v1/jobs": [401, 401, OK, OK, OK, 403],
  "GET /v1/jobs/:id": [401, 401, OK, OK, OK, 403],
  "GET /v1/jobs/:id/logs": [401, 401, OK, OK, OK, 403],
  "GET /v1/jobs/:id/logs/stream": [401, 401, OK, OK, OK, 403],
  "GET /v1/events": [401, 401, OK, OK, OK, 403],
  "GET /v1/agents": [401, 401, OK, OK, OK, 403],
  "GET /v1/agents/:id": [401, 401, OK, OK, OK, 403],
  "GET /v1/fleet": [401, 401, OK, OK, OK, 403],
  "GET /v1/stats/history": [401, 401, OK, OK, OK, 403],
  "GET /v1/stats/jobs": [401, 401, OK, OK, OK, 403],
  "POST /v1/jobs": [401, 401, 403, OK, OK, 403],
  "POST /v1/jobs/:id/cancel": [401, 401, 403, OK, OK, 403],
  "POST /v1/jobs/:id/retry": [401, 401, 403, OK, OK, 403],
  "POST /v1/agents/:id/drain": [401, 401, 403, OK, OK, 403],
  "PUT /v1/fleet": [401, 401, 403, OK, OK, 403],
  "GET /v1/audit": [401, 401, 403, OK, OK, 403],
  "GET /v1/audit/verify": [401, 401, 403, OK, OK, 403],
  "POST /v1/audit/verify": [401, 401, 403, OK, OK, 403],
  "GET /v1/audit/checkpoints": [401, 401, 403, OK, OK, 403],
  "POST /v1/tokens": [401, 401, 403, 403, OK, 403],
  "GET /v1/tokens": [401, 401, 403, 403, OK, 403],
  "DELETE /v1/tokens/:id": [401, 401, 403, 403, OK, 403],
  "POST /v1/agent/register": [401, 401, 403, 403, 403, OK],
  "POST /v1/agent/heartbeat": [401, 401, 403, 403, 403, OK],
  "POST /v1/agent/claim": [401, 401, 403, 403, 403, OK],
  "POST /v1/agent/jobs/:id/events": [401, 401, 403, 403, 403, OK],
  "POST /v1/agent/jobs/:id/finish": [401, 401, 403, 403, 403, OK],
  "POST /v1/agent/deregister": [401, 401, 403, 403, 403, OK],
};

describeWith(await pgGate(), "role × endpoint matrix [pg]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const tokenOf = (caller: Caller): string | null => {
    if (caller === "anonymous") return null;
    if (caller === "unknown token") return "skf_made-up-token-that-was-never-issued";
    return t.tokens[caller];
  };

  async function send(
    method: string,
    token: string | null,
    path: string,
    body: unknown,
    stream: boolean | undefined,
    requestId: string,
  ) {
    const headers = { "x-request-id": requestId };
    if (!stream) return (await t.call(method, path, { token, body, headers })).status;
    const controller = new AbortController();
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers,
      signal: controller.signal,
    });
    const status = res.status;
    if (status === 200) expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    controller.abort();
    return status;
  }

  it("the API serves exactly the routes the table lists", () => {
    const served = t.api.routes.map((r) => `${r.method} ${r.url}`).sort();
    expect(served).toEqual(Object.keys(TABLE).sort());
  });

  // One test per route, each on its own fixtures, so a failure names the route and any subset runs alone.
  it.each(Object.entries(TABLE))("%s answers every caller as the table says, over HTTP", async (key, row) => {
    const route = t.api.routes.find((r) => `${r.method} ${r.url}` === key);
    if (!route) throw new Error(`the API does not serve ${key}`);
    const refused = await sampleRequest(t, route);
    const got: string[] = [];
    const want: string[] = [];
    const refusals: string[] = [];
    for (const [i, caller] of CALLERS.entries()) {
      const expected = row[i];
      // A request that should succeed gets its own fresh fixture (a job to cancel, a token to revoke).
      const sample = expected === OK ? await sampleRequest(t, route) : refused;
      const requestId = `matrix-${key.replace(/[^\w]+/g, "_")}-${caller.replace(/ /g, "_")}`;
      const status = await send(
        route.method,
        tokenOf(caller),
        sample.path,
        sample.body,
        sample.stream,
        requestId,
      );
      got.push(`${key} as ${caller}: ${status >= 200 && status < 300 ? OK : status}`);
      want.push(`${key} as ${caller}: ${expected}`);
      if (expected !== OK) refusals.push(`${requestId} by ${ACTORS[caller]}`);
    }
    expect(got).toEqual(want);
    // Every refusal, and nothing else, is in the audit log under this route, with who tried it.
    const denied = (await t.store.listAudit({ action: key, limit: 100 })).filter(
      (e) => e.outcome === "denied",
    );
    expect(denied.map((e) => `${e.requestId} by ${e.actor}`).sort()).toEqual(refusals.sort());
    expect((await t.store.verifyAudit()).ok).toBe(true);
  });

  it("a revoked token is refused on its very next request", async () => {
    const made = (await t.call("POST", "/v1/tokens", { body: { name: "short-lived", role: "operator" } }))
      .body;
    expect((await t.call("GET", "/v1/whoami", { token: made.token })).body).toEqual({
      name: "short-lived",
      role: "operator",
    });
    expect((await t.call("DELETE", `/v1/tokens/${made.id}`)).status).toBe(200);
    const after = await t.call("GET", "/v1/whoami", { token: made.token });
    expect(after).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
    const listed = (await t.call("GET", "/v1/tokens")).body.items;
    expect(JSON.stringify(listed)).not.toContain(made.token);
    expect(listed.find((x: { id: string }) => x.id === made.id).revokedAt).not.toBeNull();
  });
});
