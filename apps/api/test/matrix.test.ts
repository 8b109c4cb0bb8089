import { type Role, roleAllows } from "@skiff/protocol";
import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { sampleRequest } from "./fixtures.ts";
import { startTestApi, type TestApi } from "./harness.ts";

const ROLES: Role[] = ["viewer", "operator", "admin", "agent"];

describeWith(await pgGate(), "role × endpoint matrix [pg]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function send(method: string, token: string | null, path: string, body: unknown, stream?: boolean) {
    if (!stream) return (await t.call(method, path, { token, body })).status;
    const controller = new AbortController();
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: controller.signal,
    });
    const status = res.status;
    if (status === 200) expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    controller.abort();
    return status;
  }

  it("every endpoint: 401 without a token, 403 below its role, success at or above it", async () => {
    const { routes } = t.api;
    expect(routes.length).toBeGreaterThanOrEqual(24);
    let denials = 0;
    const table: string[] = [];
    for (const route of routes) {
      const sample = await sampleRequest(t, route);
      const anon = await send(route.method, null, sample.path, sample.body, sample.stream);
      expect(anon, `${route.method} ${route.url} without a token`).toBe(401);
      denials++;
      for (const role of ROLES) {
        const allowed = roleAllows(role, route.role as Role);
        const fresh = allowed ? await sampleRequest(t, route) : sample;
        const status = await send(route.method, t.tokens[role], fresh.path, fresh.body, fresh.stream);
        table.push(`${route.method} ${route.url} as ${role}: ${status}`);
        if (allowed) {
          expect(status, `${route.method} ${route.url} as ${role}`).toBeGreaterThanOrEqual(200);
          expect(status, `${route.method} ${route.url} as ${role}`).toBeLessThan(300);
        } else {
          expect(status, `${route.method} ${route.url} as ${role}`).toBe(403);
          denials++;
        }
      }
    }
    // An agent token reaches exactly the agent protocol.
    for (const route of routes) {
      expect(roleAllows("agent", route.role as Role)).toBe(route.url.startsWith("/v1/agent/"));
    }
    const denied = await t.store.listAudit({ limit: 1000 });
    expect(denied.filter((e) => e.outcome === "denied").length).toBe(denials);
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
