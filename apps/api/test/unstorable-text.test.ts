import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hello, registerAgent, startTestApi, type TestApi } from "./harness.ts";

const pg = await pgGate();

const NUL = "must not contain NUL (U+0000)";
const LONE = "must not contain a lone UTF-16 surrogate (U+D800 to U+DFFF without its pair)";

function expectRefused(res: { status: number; body: any }, path: string, message: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.body.error.code).toBe("invalid_input");
  expect(res.body.error.details.issues).toContainEqual({ path, message });
}

/**
 * Text PostgreSQL cannot store (NUL, lone UTF-16 surrogates) and numbers its columns cannot hold,
 * sent by a client that means harm or by a job that printed odd bytes: never a 500.
 */
for (const adapter of ["pg", "pglite"] as const) {
  const gate = adapter === "pg" ? pg : { available: true, missing: null };
  describeWith(gate, `unstorable input [${adapter}]`, () => {
    let t: TestApi;
    beforeAll(async () => {
      t = await startTestApi({ adapter, config: { failureLimitPerMinute: 1_000_000 } });
    });
    afterAll(async () => {
      await t?.close();
    });

    let n = 0;
    async function claimed() {
      const queue = `uq${++n}`;
      const agentId = await registerAgent(t, `w-${queue}`, { queue });
      const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) })).body;
      const claim = await t.call("POST", "/v1/agent/claim", {
        token: t.tokens.agent,
        body: { agentId, max: 1 },
      });
      return { agentId, jobId: job.id as string, epoch: claim.body.jobs[0].epoch as number };
    }

    it("log text with NUL or lone surrogates is stored with U+FFFD in their place, in order", async () => {
      const c = await claimed();
      const texts = ["x\0y", "\ud800 high alone", "low alone \udfff", "pair 😀 kept", "\0"];
      const res = await t.call("POST", `/v1/agent/jobs/${c.jobId}/events`, {
        token: t.tokens.agent,
        body: {
          agentId: c.agentId,
          epoch: c.epoch,
          events: texts.map((text, i) => ({ type: "log", seq: i + 1, step: 0, stream: "stdout", text })),
        },
      });
      expect(res).toMatchObject({ status: 200, body: { accepted: 5 } });
      const logs = await t.call("GET", `/v1/jobs/${c.jobId}/logs`);
      expect(logs.body.lines.map((l: { text: string }) => l.text)).toEqual([
        "x\uFFFDy",
        "\uFFFD high alone",
        "low alone \uFFFD",
        "pair 😀 kept",
        "\uFFFD",
      ]);
    });

    it("NUL or a lone surrogate in a job's name, env or run is a 400 naming the field", async () => {
      const submit = (body: unknown) => t.call("POST", "/v1/jobs", { token: t.tokens.operator, body });
      expectRefused(await submit(hello("default", { name: "a\0b" })), "name", NUL);
      expectRefused(await submit(hello("default", { env: { X: "\ud800" } })), "env.X", LONE);
      expectRefused(
        await submit(hello("default", { steps: [{ name: "s", run: "echo \0" }] })),
        "steps[0].run",
        NUL,
      );
      expect((await submit(hello("default", { name: "emoji 😀 fine" }))).status).toBe(201);
    });

    it("reasons and agent names with NUL or lone surrogates are 400s", async () => {
      const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("nowhere") }))
        .body;
      expectRefused(
        await t.call("POST", `/v1/jobs/${job.id}/cancel`, { body: { reason: "x\0" } }),
        "reason",
        NUL,
      );
      const agentId = await registerAgent(t, "drainee");
      expectRefused(
        await t.call("POST", `/v1/agents/${agentId}/drain`, { body: { reason: "\udc00" } }),
        "reason",
        LONE,
      );
      const register = (name: string) =>
        t.call("POST", "/v1/agent/register", {
          token: t.tokens.agent,
          body: { name, version: "0.1.0", slots: 1, labels: {}, sandbox: "bwrap", resources: {} },
        });
      expectRefused(await register("w\ud800"), "name", LONE);
      expectRefused(await register("w\0"), "name", NUL);
    });

    it("an id with NUL in the path is a 400, for every kind of id", async () => {
      for (const path of ["/v1/jobs/%00", "/v1/jobs/a%00/logs", "/v1/agents/%00", "/v1/jobs/%00/logs/stream"])
        expectRefused(await t.call("GET", path), "id", NUL);
      expectRefused(await t.call("DELETE", "/v1/tokens/x%00y"), "id", NUL);
      expectRefused(await t.call("POST", "/v1/jobs/%00/retry"), "id", NUL);
    });

    it("a forged cursor is a 400 invalid cursor, whatever it decodes to", async () => {
      const forged = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
      for (const cursor of [
        "eyJjIjoiMjAyNiIsImkiOiJ4In0", // {"c":"2026","i":"x"}: c is cast to timestamptz
        forged({ c: "0000-01-01T00:00:00Z", i: "x" }),
        forged({ c: new Date().toISOString(), i: "x\u0000" }),
        forged({ c: new Date().toISOString(), i: 5 }),
        forged([1]),
        "!!!",
      ]) {
        const res = await t.call("GET", `/v1/jobs?cursor=${cursor}`);
        expectRefused(res, "cursor", "not a cursor this server issued; start again without one");
        expect(res.body.error.message).toMatch(/^invalid cursor/);
      }
      const first = await t.call("GET", "/v1/jobs?limit=1");
      expect(first.body.nextCursor).toEqual(expect.any(String));
      expect((await t.call("GET", `/v1/jobs?limit=1&cursor=${first.body.nextCursor}`)).status).toBe(200);
    });

    it("an exit code past int4 is a 400, and does not sink the other finishes committed with it", async () => {
      const bad = await claimed();
      const good = await claimed();
      const finish = (c: typeof bad, exitCode: number) =>
        t.call("POST", `/v1/agent/jobs/${c.jobId}/finish`, {
          token: t.tokens.agent,
          body: { agentId: c.agentId, epoch: c.epoch, outcome: "failed", exitCode },
        });
      const [refused, ok] = await Promise.all([finish(bad, 2147483648), finish(good, 3)]);
      expect(refused.status).toBe(400);
      expect(refused.body.error.details.issues[0].path).toBe("exitCode");
      expect(ok.status).toBe(200);
      expect((await finish(bad, -2147483648)).status).toBe(200);
    });

    it("step events with an exit code past int4 or a time timestamptz cannot take are 400s", async () => {
      const c = await claimed();
      const events = (e: object) =>
        t.call("POST", `/v1/agent/jobs/${c.jobId}/events`, {
          token: t.tokens.agent,
          body: { agentId: c.agentId, epoch: c.epoch, events: [e] },
        });
      const finished = { type: "step.finished", step: 0, outcome: "failed" };
      expect((await events({ ...finished, exitCode: 2 ** 31 })).status).toBe(400);
      expect((await events({ ...finished, exitCode: 1, ts: "0000-01-01T00:00:00Z" })).status).toBe(400);
      expect((await events({ type: "step.started", step: 2 ** 31 })).status).toBe(400);
      expect((await events({ ...finished, exitCode: 1, ts: new Date().toISOString() })).status).toBe(200);
    });

    it("a query value PostgreSQL cannot store is a 400 even where a schema lets it through", async () => {
      for (const q of ["actor=%00", "target=a%00b", "since=0000-01-01T00:00:00Z"]) {
        const res = await t.call("GET", `/v1/audit?${q}`);
        expect(res.status, q).toBe(400);
        expect(res.body.error.code).toBe("invalid_input");
      }
      expectRefused(await t.call("GET", "/v1/jobs?q=%00"), "q", NUL);
      expect(await t.call("GET", "/v1/audit/verify")).toMatchObject({ status: 200, body: { ok: true } });
    });
  });
}
