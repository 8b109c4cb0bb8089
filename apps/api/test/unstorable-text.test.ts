import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hello, registerAgent, startTestApi, type TestApi } from "./harness.ts";

const pg = await pgGate();

/**
 * Text PostgreSQL cannot store (NUL, lone UTF-16 surrogates) and numbers its columns cannot hold,
 * sent by a client that means harm or by a job that printed odd bytes: never a 500.
 */
for (const adapter of ["pg", "pglite"] as const) {
  describeWith(
    adapter === "pg" ? pg : { available: true, missing: null },
    `unstorable input [${adapter}]`,
    () => {
      let t: TestApi;
      beforeAll(async () => {
        t = await startTestApi({ adapter, config: { failureLimitPerMinute: 1_000_000 } });
      });
      afterAll(async () => {
        await t?.close();
      });

      async function claimed() {
        const queue = `q${Math.random().toString(36).slice(2, 8)}`;
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
    },
  );
}
