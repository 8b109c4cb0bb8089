import { describeWith, pgGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { hello, readSse, registerAgent, startTestApi, type TestApi } from "./harness.ts";

const pg = await pgGate();

for (const adapter of ["pg", "pglite"] as const) {
  describeWith(
    adapter === "pg" ? pg : { available: true, missing: null },
    `agent protocol [${adapter}]`,
    () => {
      let t: TestApi;
      beforeAll(async () => {
        t = await startTestApi({ adapter, config: { offlineAfterMs: 3000 } });
      });
      afterAll(async () => {
        await t?.close();
      });

      it("a long-polling claim wakes when a matching job is submitted, not at its timeout", async () => {
        const agentId = await registerAgent(t, "poller", { queue: "wake" });
        const started = Date.now();
        const claim = t.call("POST", "/v1/agent/claim", {
          token: t.tokens.agent,
          body: { agentId, max: 1, waitMs: 20_000 },
        });
        await waitFor("the claim to be waiting", () => t.api.ctx.waiters.size > 0);
        const submitted = await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("wake") });
        expect(submitted.status).toBe(201);
        const res = await claim;
        expect(res.status).toBe(200);
        expect(res.body.jobs).toHaveLength(1);
        expect(res.body.jobs[0]).toMatchObject({
          epoch: 1,
          attempt: 1,
          job: { id: submitted.body.id, state: "assigned" },
        });
        // It returned because of the wake-up: the 20 s timeout is nowhere near.
        expect(Date.now() - started).toBeLessThan(15_000);
      });

      it("an empty long-poll returns an empty list at its timeout, and other queues do not wake it", async () => {
        const agentId = await registerAgent(t, "idle", { queue: "quiet" });
        const claim = t.call("POST", "/v1/agent/claim", {
          token: t.tokens.agent,
          body: { agentId, max: 1, waitMs: 300 },
        });
        await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("elsewhere") });
        expect((await claim).body).toEqual({ jobs: [] });
      });

      it("runs a job end to end: events, logs with resume, live stream, finish, and fencing after", async () => {
        const agentId = await registerAgent(t, "runner", { queue: "e2e" });
        const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("e2e") })).body;
        const claim = (
          await t.call("POST", "/v1/agent/claim", {
            token: t.tokens.agent,
            body: { agentId, max: 4, waitMs: 0 },
          })
        ).body;
        const epoch = claim.jobs[0].epoch;
        const follower = readSse(`${t.url}/v1/jobs/${job.id}/logs/stream`, t.tokens.viewer, (ev) =>
          ev.some((e) => e.event === "end"),
        );
        const up = (events: unknown[]) =>
          t.call("POST", `/v1/agent/jobs/${job.id}/events`, {
            token: t.tokens.agent,
            body: { agentId, epoch, events },
          });
        const first = await up([
          { type: "step.started", step: 0 },
          { type: "log", seq: 1, step: 0, stream: "stdout", text: "hello" },
        ]);
        expect(first).toMatchObject({ status: 200, body: { cancel: false, accepted: 1 } });
        expect((await t.call("GET", `/v1/jobs/${job.id}`, { token: t.tokens.viewer })).body.state).toBe(
          "running",
        );
        await up([{ type: "log", seq: 1, step: 0, stream: "stdout", text: "hello" }]); // a retried upload
        await up([
          { type: "log", seq: 2, step: 0, stream: "stderr", text: "world" },
          { type: "step.finished", step: 0, outcome: "succeeded", exitCode: 0 },
        ]);
        const fin = await t.call("POST", `/v1/agent/jobs/${job.id}/finish`, {
          token: t.tokens.agent,
          body: { agentId, epoch, outcome: "succeeded", exitCode: 0 },
        });
        expect(fin.status).toBe(200);
        const streamed = await follower;
        expect(streamed.filter((e) => e.event === "line").map((e) => [e.id, e.data.text])).toEqual([
          ["1", "hello"],
          ["2", "world"],
        ]);
        expect(streamed.at(-1)).toMatchObject({ event: "end", data: { state: "succeeded", exitCode: 0 } });

        const resumed = await readSse(
          `${t.url}/v1/jobs/${job.id}/logs/stream`,
          t.tokens.viewer,
          (ev) => ev.some((e) => e.event === "end"),
          { headers: { "last-event-id": "1" } },
        );
        expect(resumed.filter((e) => e.event === "line").map((e) => e.data.seq)).toEqual([2]);
        const page = await t.call("GET", `/v1/jobs/${job.id}/logs?after=0&limit=1`, {
          token: t.tokens.viewer,
        });
        expect(page.body).toMatchObject({
          state: "succeeded",
          nextAfter: 1,
          lines: [{ seq: 1, stream: "stdout", text: "hello" }],
        });

        const late = await up([{ type: "log", seq: 3, step: 0, stream: "stdout", text: "late" }]);
        expect(late).toMatchObject({ status: 409, body: { error: { code: "already_final" } } });
        const stale = await t.call("POST", `/v1/agent/jobs/${job.id}/finish`, {
          token: t.tokens.agent,
          body: { agentId, epoch: epoch + 1, outcome: "failed", exitCode: 1 },
        });
        expect(stale).toMatchObject({ status: 409, body: { error: { code: "lease_lost" } } });
      });

      it("heartbeats carry cancel and drain commands; a drained agent gets no work", async () => {
        const agentId = await registerAgent(t, "commanded", { queue: "cmd" });
        const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("cmd") })).body;
        const claim = (
          await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } })
        ).body;
        const epoch = claim.jobs[0].epoch;
        const cancel = await t.call("POST", `/v1/jobs/${job.id}/cancel`, {
          token: t.tokens.operator,
          body: { reason: "wrong branch" },
        });
        expect(cancel.body.state).toBe("canceling");
        const hb = await t.call("POST", "/v1/agent/heartbeat", {
          token: t.tokens.agent,
          body: { agentId, status: "busy", running: [{ jobId: job.id, epoch }] },
        });
        expect(hb.body.commands).toEqual([{ type: "cancel", jobId: job.id, epoch, reason: "wrong branch" }]);
        const ev = await t.call("POST", `/v1/agent/jobs/${job.id}/events`, {
          token: t.tokens.agent,
          body: { agentId, epoch, events: [] },
        });
        expect(ev.body.cancel).toBe(true);
        await t.call("POST", `/v1/agent/jobs/${job.id}/finish`, {
          token: t.tokens.agent,
          body: { agentId, epoch, outcome: "canceled", exitCode: null },
        });
        expect((await t.call("GET", `/v1/jobs/${job.id}`, { token: t.tokens.viewer })).body.state).toBe(
          "canceled",
        );

        const drain = await t.call("POST", `/v1/agents/${agentId}/drain`, {
          token: t.tokens.operator,
          body: { reason: "kernel update" },
        });
        expect(drain).toMatchObject({ status: 200, body: { drainRequested: true } });
        const hb2 = await t.call("POST", "/v1/agent/heartbeat", {
          token: t.tokens.agent,
          body: { agentId, status: "idle", running: [] },
        });
        expect(hb2.body.commands).toEqual([{ type: "drain", reason: "kernel update" }]);
        await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("cmd") });
        const none = await t.call("POST", "/v1/agent/claim", {
          token: t.tokens.agent,
          body: { agentId, max: 1, waitMs: 0 },
        });
        expect(none.body.jobs).toEqual([]);
      });

      it("the reaper requeues a silent agent's job as attempt 2 with a new epoch, then fails it with agent_lost", async () => {
        const silentAgent = async (name: string) => {
          const agentId = await registerAgent(t, name, { queue: "reap" });
          const claim = (
            await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } })
          ).body;
          return { agentId, claim: claim.jobs[0] };
        };
        const offline = (agentId: string) =>
          waitFor(
            `agent ${agentId} to go offline`,
            async () =>
              (await t.call("GET", `/v1/agents/${agentId}`, { token: t.tokens.viewer })).body.status ===
              "offline",
            15_000,
            100,
          );
        const job = (
          await t.call("POST", "/v1/jobs", {
            token: t.tokens.operator,
            body: hello("reap", { maxAttempts: 2 }),
          })
        ).body;
        const first = await silentAgent("doomed-1");
        expect(first.claim).toMatchObject({ attempt: 1, epoch: 1, job: { id: job.id } });
        await offline(first.agentId);
        const requeued = (await t.call("GET", `/v1/jobs/${job.id}`, { token: t.tokens.viewer })).body;
        expect(requeued).toMatchObject({ state: "queued", epoch: 2, agentId: null });
        const fenced = await t.call("POST", `/v1/agent/jobs/${job.id}/events`, {
          token: t.tokens.agent,
          body: { agentId: first.agentId, epoch: 1, events: [] },
        });
        expect(fenced).toMatchObject({ status: 409, body: { error: { code: "lease_lost" } } });

        const second = await silentAgent("doomed-2");
        expect(second.claim).toMatchObject({ attempt: 2, epoch: 3, job: { id: job.id } });
        await offline(second.agentId);
        const failed = (await t.call("GET", `/v1/jobs/${job.id}`, { token: t.tokens.viewer })).body;
        expect(failed).toMatchObject({ state: "failed", error: "agent_lost", attempt: 2 });
        const audit = await t.call("GET", "/v1/audit?action=agent.offline", { token: t.tokens.operator });
        const targets = audit.body.items.map((e: { target: string }) => e.target);
        expect(targets).toEqual(expect.arrayContaining([first.agentId, second.agentId]));
      });

      it("every action above is in the audit log with actor, action, target and outcome, and the chain verifies", async () => {
        await t.call("GET", "/v1/tokens", { token: t.tokens.viewer }); // a denied request
        const all = (await t.call("GET", "/v1/audit?limit=1000", { token: t.tokens.operator })).body
          .items as {
          actor: string;
          action: string;
          target: string;
          outcome: string;
        }[];
        const has = (action: string, actor: RegExp, outcome = "ok") =>
          expect(
            all.some(
              (e) => e.action === action && actor.test(e.actor) && e.outcome === outcome && e.target !== "",
            ),
            `${action} by ${actor} (${outcome})`,
          ).toBe(true);
        has("job.submit", /^olivia$/);
        has("job.cancel", /^olivia$/);
        has("agent.register", /^agent-pool\//);
        has("agent.drain", /^olivia$/);
        has("agent.offline", /^reaper$/);
        has("GET /v1/tokens", /^victor$/, "denied");
        const verify = (await t.call("GET", "/v1/audit/verify", { token: t.tokens.operator })).body;
        expect(verify).toMatchObject({ ok: true });
        expect(verify.checked).toBeGreaterThanOrEqual(all.length);
      });

      it("an agent may only act as itself", async () => {
        const agentId = await registerAgent(t, "mine");
        const { createToken } = await import("./harness.ts");
        const other = await createToken(t.store, "agent", "other-pool");
        const res = await t.call("POST", "/v1/agent/heartbeat", {
          token: other,
          body: { agentId, status: "idle", running: [] },
        });
        expect(res).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
      });

      it("the fleet's actual is the controller's count of its workers; agents started beside it are only online", async () => {
        const fleet = async () => (await t.call("GET", "/v1/fleet", { token: t.tokens.viewer })).body;
        // No controller has counted yet: every online agent, as before.
        const before = await fleet();
        expect(before.actual).toBe(before.online);
        const lead = (await t.store.takeLeadership("ctl-flow")).value;
        expect(await t.store.reportWorkers(lead.epoch, 2)).toBe(true);
        expect(await t.store.reportWorkers(lead.epoch, 2)).toBe(false); // unchanged: nothing written
        await registerAgent(t, "beside-the-fleet");
        const after = await fleet();
        expect(after).toMatchObject({ actual: 2, online: before.online + 1, leader: { holder: "ctl-flow" } });
        // A new leader has not counted yet: the old one's count is not taken as its own.
        await t.store.takeLeadership("ctl-next");
        expect(await fleet()).toMatchObject({ actual: after.online, online: after.online });
      });
    },
  );
}
