import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hello, startTestApi, type TestApi } from "./harness.ts";

/**
 * Agent tokens bound to queues and labels, and the credential each agent gets at registration.
 * Each test plays the agent that tries to step outside what it was given.
 */

type Scope = { queues: string[]; labels?: Record<string, string> };

async function scopedToken(t: TestApi, name: string, scope: Scope): Promise<string> {
  const res = await t.call("POST", "/v1/tokens", { body: { name, role: "agent", scope } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.scope).toEqual(scope);
  return res.body.token;
}

function register(t: TestApi, token: string, name: string, labels: Record<string, string>) {
  return t.call("POST", "/v1/agent/register", {
    token,
    body: { name, version: "0.1.0", slots: 2, labels, sandbox: "bwrap", resources: {} },
  });
}

/** Registers and returns the agent's id and its own credential. */
async function registered(t: TestApi, token: string, name: string, labels: Record<string, string>) {
  const res = await register(t, token, name, labels);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.agentToken).toMatch(/^skfa_\S{40,}$/);
  return { agentId: res.body.agentId as string, credential: res.body.agentToken as string };
}

const claim = (t: TestApi, token: string, agentId: string) =>
  t.call("POST", "/v1/agent/claim", { token, body: { agentId, max: 4, waitMs: 0 } });
const heartbeat = (t: TestApi, token: string, agentId: string) =>
  t.call("POST", "/v1/agent/heartbeat", { token, body: { agentId, status: "idle", running: [] } });

async function submit(t: TestApi, queue: string): Promise<string> {
  const res = await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) });
  expect(res.status).toBe(201);
  return res.body.id;
}

const stateOf = async (t: TestApi, jobId: string) =>
  (await t.call("GET", `/v1/jobs/${jobId}`, { token: t.tokens.viewer })).body.state;

async function deniedAudit(t: TestApi, action: string) {
  const res = await t.call("GET", `/v1/audit?action=${encodeURIComponent(action)}&limit=1000`, {
    token: t.tokens.operator,
  });
  return (res.body.items as { outcome: string; target: string; actor: string; details: any }[]).filter(
    (e) => e.outcome === "denied",
  );
}

describeWith(await pgGate(), "agent token scope [pg]", () => {
  let t: TestApi;
  beforeAll(async () => {
    // Refusals are the point here; the failure limiter must not turn them into 429s.
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe("POST /v1/tokens", () => {
    it("validates the scope with the path of the bad field, and takes one only for agent tokens", async () => {
      const bad = async (body: unknown) => {
        const res = await t.call("POST", "/v1/tokens", { body });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.code).toBe("invalid_input");
        return res.body.error.details.issues.map((i: { path: string }) => i.path);
      };
      expect(await bad({ name: "v", role: "viewer", scope: { queues: ["a"] } })).toEqual(["scope"]);
      expect(await bad({ name: "x", role: "agent", scope: { queues: [] } })).toEqual(["scope.queues"]);
      expect(await bad({ name: "x", role: "agent", scope: { queues: ["a", "a"] } })).toEqual([
        "scope.queues",
      ]);
      expect(await bad({ name: "x", role: "agent", scope: { queues: ["no spaces"] } })).toEqual([
        "scope.queues[0]",
      ]);
      expect(
        await bad({ name: "x", role: "agent", scope: { queues: ["a"], labels: { queue: "b" } } }),
      ).toEqual(["scope.labels.queue"]);
      expect(await bad({ name: "x", role: "agent", scope: { queues: ["a"], pools: ["p"] } })).toEqual([
        "scope.pools",
      ]);
    });

    it("stores the scope, lists it, and audits it with the creation", async () => {
      const made = await t.call("POST", "/v1/tokens", {
        body: { name: "listed", role: "agent", scope: { queues: ["a", "b"], labels: { pool: "ci" } } },
      });
      expect(made.status).toBe(201);
      const list = (await t.call("GET", "/v1/tokens")).body.items;
      expect(list.find((x: { id: string }) => x.id === made.body.id)).toMatchObject({
        role: "agent",
        scope: { queues: ["a", "b"], labels: { pool: "ci" } },
      });
      expect(list.find((x: { name: string }) => x.name === "agent-pool").scope).toBeNull();
      const audit = (await t.call("GET", `/v1/audit?target=${made.body.id}`, { token: t.tokens.operator }))
        .body.items;
      expect(audit[0]).toMatchObject({
        action: "token.create",
        details: { scope: { queues: ["a", "b"], labels: { pool: "ci" } } },
      });
    });
  });

  describe("registration", () => {
    it("a token scoped to queue a cannot register for b: 403 out_of_scope, audited as denied, no agent", async () => {
      const token = await scopedToken(t, "only-a", { queues: ["a"] });
      const res = await register(t, token, "wants-b", { queue: "b" });
      expect(res.status).toBe(403);
      expect(res.body.error).toEqual({
        code: "out_of_scope",
        message: "cannot register wants-b: queue b is outside this token's scope (queues a)",
      });
      // Also a list that is only partly outside, and no queue label at all (which means `default`).
      expect((await register(t, token, "wants-a-and-b", { queue: "a,b" })).body.error.code).toBe(
        "out_of_scope",
      );
      expect((await register(t, token, "no-label", {})).body.error.message).toContain(
        "queue default is outside",
      );

      const denied = await deniedAudit(t, "agent.register");
      expect(denied.find((e) => e.target === "wants-b")).toMatchObject({
        actor: "only-a/wants-b",
        details: { status: 403, code: "out_of_scope", queues: ["b"], scope: { queues: ["a"] } },
      });
      const agents = (await t.call("GET", "/v1/agents", { token: t.tokens.viewer })).body.items;
      expect(agents.map((a: { name: string }) => a.name)).not.toContain("wants-b");
      expect((await t.call("GET", "/v1/audit/verify", { token: t.tokens.operator })).body.ok).toBe(true);
    });

    it("a label outside the scope is refused, and so is a missing one; the scoped value is accepted", async () => {
      const token = await scopedToken(t, "pool-untrusted", {
        queues: ["lab"],
        labels: { pool: "untrusted" },
      });
      const lying = await register(t, token, "liar", { queue: "lab", pool: "trusted" });
      expect(lying.status).toBe(403);
      expect(lying.body.error).toMatchObject({
        code: "out_of_scope",
        message: expect.stringContaining(
          "pool=trusted is outside this token's scope (labels must include pool=untrusted)",
        ),
      });
      const missing = await register(t, token, "unlabelled", { queue: "lab" });
      expect(missing.body.error.message).toContain("no pool label is outside");
      expect((await deniedAudit(t, "agent.register")).map((e) => e.target)).toEqual(
        expect.arrayContaining(["liar", "unlabelled"]),
      );
      await registered(t, token, "honest", { queue: "lab", pool: "untrusted", os: "linux" });
    });

    it("registering for a works and its credential claims a's jobs, never b's", async () => {
      const token = await scopedToken(t, "a-workers", { queues: ["qa"] });
      const { agentId, credential } = await registered(t, token, "a-1", { queue: "qa" });
      const jobB = await submit(t, "qb");
      const jobA = await submit(t, "qa");
      const got = await claim(t, credential, agentId);
      expect(got.status).toBe(200);
      expect(got.body.jobs.map((c: { job: { id: string } }) => c.job.id)).toEqual([jobA]);
      expect(await stateOf(t, jobB)).toBe("queued");
      expect(await stateOf(t, jobA)).toBe("assigned");
    });
  });

  describe("claims", () => {
    it("an agent registered under a wider scope cannot claim once its token's scope no longer covers its queues", async () => {
      const token = await scopedToken(t, "narrowed", { queues: ["na", "nb"] });
      const { agentId, credential } = await registered(t, token, "wide", { queue: "nb" });
      const job = await submit(t, "nb");
      // There is no API to narrow a scope; a hand edit (or a later one) stands in for it.
      await t.store.db.query(`update tokens set scope = '{"queues":["na"]}' where name = 'narrowed'`);
      const res = await claim(t, credential, agentId);
      expect(res.status).toBe(403);
      expect(res.body.error).toEqual({
        code: "out_of_scope",
        message: `agent ${agentId} may not claim: queue nb is outside this token's scope (queues na)`,
      });
      expect(await stateOf(t, job)).toBe("queued");
      expect((await deniedAudit(t, "POST /v1/agent/claim")).map((e) => e.target)).toContain(agentId);
    });

    it("another token's agent cannot be claimed for, whatever that agent serves", async () => {
      const pool = await registered(t, t.tokens.agent, "pool-b", { queue: "ob" });
      const token = await scopedToken(t, "a-only-2", { queues: ["oa"] });
      const mine = await registered(t, token, "own-a", { queue: "oa" });
      const job = await submit(t, "ob");
      // Neither the scoped token nor its agent's credential may speak for the pool's agent.
      expect((await claim(t, token, pool.agentId)).status).toBe(403);
      expect((await claim(t, mine.credential, pool.agentId)).body.error.code).toBe("forbidden");
      expect(await stateOf(t, job)).toBe("queued");
    });
  });

  describe("the per-agent credential", () => {
    it("acts only as its own agent: another agent id gets 403, audited; it cannot register agents", async () => {
      const token = await scopedToken(t, "pair", { queues: ["pair"] });
      const one = await registered(t, token, "one", { queue: "pair" });
      const two = await registered(t, token, "two", { queue: "pair" });
      expect((await heartbeat(t, one.credential, one.agentId)).status).toBe(200);
      const job = await submit(t, "pair");
      const taken = await claim(t, two.credential, two.agentId);
      const epoch = taken.body.jobs[0].epoch;

      const asTwo = await heartbeat(t, one.credential, two.agentId);
      expect(asTwo.status).toBe(403);
      expect(asTwo.body.error).toEqual({
        code: "forbidden",
        message: `this credential belongs to agent ${one.agentId}; it cannot act as agent ${two.agentId}`,
      });
      expect((await claim(t, one.credential, two.agentId)).status).toBe(403);
      const finish = await t.call("POST", `/v1/agent/jobs/${job}/finish`, {
        token: one.credential,
        body: { agentId: two.agentId, epoch, outcome: "succeeded", exitCode: 0 },
      });
      expect(finish.status).toBe(403);
      expect(await stateOf(t, job)).toBe("assigned");
      const dereg = await t.call("POST", "/v1/agent/deregister", {
        token: one.credential,
        body: { agentId: two.agentId },
      });
      expect(dereg.status).toBe(403);
      const denied = await deniedAudit(t, "POST /v1/agent/heartbeat");
      expect(denied.find((e) => e.target === two.agentId)).toMatchObject({ actor: `pair/${one.agentId}` });

      const again = await register(t, one.credential, "three", { queue: "pair" });
      expect(again).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    });

    it("a scoped token only registers: acting as its agent needs the agent's own credential", async () => {
      const token = await scopedToken(t, "register-only", { queues: ["ro"] });
      const { agentId, credential } = await registered(t, token, "ro-1", { queue: "ro" });
      const res = await heartbeat(t, token, agentId);
      expect(res.status).toBe(403);
      expect(res.body.error.message).toContain("a scoped agent token only registers agents");
      expect((await heartbeat(t, credential, agentId)).status).toBe(200);
      // An unscoped token keeps acting for the agents it registered, as before scopes existed.
      const legacy = await registered(t, t.tokens.agent, "legacy", {});
      expect((await heartbeat(t, t.tokens.agent, legacy.agentId)).status).toBe(200);
      expect((await heartbeat(t, legacy.credential, legacy.agentId)).status).toBe(200);
    });

    it("dies when the agent deregisters: its next call is 401", async () => {
      const token = await scopedToken(t, "short-lived", { queues: ["sl"] });
      const { agentId, credential } = await registered(t, token, "leaver", { queue: "sl" });
      expect((await heartbeat(t, credential, agentId)).status).toBe(200); // now cached by the API
      const bye = await t.call("POST", "/v1/agent/deregister", { token: credential, body: { agentId } });
      expect(bye.status).toBe(200);
      const after = await heartbeat(t, credential, agentId);
      expect(after).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
      expect((await claim(t, credential, agentId)).status).toBe(401);
      // The registration token still registers a fresh agent, with a fresh credential.
      const next = await registered(t, token, "leaver", { queue: "sl" });
      expect(next.credential).not.toBe(credential);
      expect((await heartbeat(t, next.credential, next.agentId)).status).toBe(200);
    });

    it("dies when the reaper marks the agent offline, even while the API still has it cached", async () => {
      const token = await scopedToken(t, "silent", { queues: ["si"] });
      const { agentId, credential } = await registered(t, token, "quiet", { queue: "si" });
      expect((await heartbeat(t, credential, agentId)).status).toBe(200);
      await t.store.db.query(
        "update agents set last_heartbeat_at = now() - interval '1 hour' where id = $1",
        [agentId],
      );
      await t.api.reaper.runOnce();
      const after = await heartbeat(t, credential, agentId);
      expect(after.status).toBe(401);
      const agent = (await t.call("GET", `/v1/agents/${agentId}`, { token: t.tokens.viewer })).body;
      expect(agent.status).toBe("offline"); // the refused heartbeat did not bring it back
    });

    it("dies with its registering token", async () => {
      const made = (
        await t.call("POST", "/v1/tokens", {
          body: { name: "revoked-pool", role: "agent", scope: { queues: ["rv"] } },
        })
      ).body;
      const { agentId, credential } = await registered(t, made.token, "orphan", { queue: "rv" });
      expect((await heartbeat(t, credential, agentId)).status).toBe(200);
      expect((await t.call("DELETE", `/v1/tokens/${made.id}`)).status).toBe(200);
      expect((await heartbeat(t, credential, agentId)).status).toBe(401);
    });
  });
});

describe("agent token scope [pglite]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pglite", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses b, registers a, claims a's job with the agent's credential, which dies at deregister", async () => {
    const token = await scopedToken(t, "only-a", { queues: ["a"] });
    expect((await register(t, token, "wants-b", { queue: "b" })).body.error.code).toBe("out_of_scope");
    expect((await deniedAudit(t, "agent.register")).map((e) => e.target)).toEqual(["wants-b"]);
    const { agentId, credential } = await registered(t, token, "serves-a", { queue: "a" });
    const jobB = await submit(t, "b");
    const jobA = await submit(t, "a");
    const got = await claim(t, credential, agentId);
    expect(got.body.jobs.map((c: { job: { id: string } }) => c.job.id)).toEqual([jobA]);
    expect(await stateOf(t, jobB)).toBe("queued");
    await t.store.db.query(`update tokens set scope = '{"queues":["z"]}' where name = 'only-a'`);
    expect((await claim(t, credential, agentId)).body.error.code).toBe("out_of_scope");
    expect(
      (await t.call("POST", "/v1/agent/deregister", { token: credential, body: { agentId } })).status,
    ).toBe(200);
    expect((await heartbeat(t, credential, agentId)).status).toBe(401);
  });
});
