import { describeWith, pgGate } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hello, registerAgent, startTestApi, type TestApi } from "../../../api/test/harness.ts";
import { ApiClient } from "../../src/client.ts";
import { HttpBackend } from "../../src/tui/data/api.ts";
import { startConsole, type TestConsole } from "./console.ts";
import { converged, rng, worker } from "./truth.ts";

function attach(t: TestApi): TestConsole {
  return startConsole(new HttpBackend(new ApiClient(t.url, { token: t.tokens.admin, source: "test" })), {
    cols: 200,
    rows: 50,
  });
}

describeWith(await pgGate(), "the console's model converges on the API's truth [pg]", () => {
  let t: TestApi;
  let c: TestConsole;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg" });
    c = attach(t);
    await c.waitForText("Overview");
  }, 60_000);
  afterAll(async () => {
    c?.close();
    await t?.close();
  });

  it("1,000 concurrent submits with random cancels, retries and finishes: the console ends equal to the API", async () => {
    const r = rng(20261201);
    const ids: string[] = [];
    const agentId = await registerAgent(t, "burst-worker", { queue: "default" });
    const w = worker(t.call, t.tokens.agent, agentId);
    let submitted = 0;
    const submitter = async () => {
      while (submitted < 1000) {
        submitted++;
        // A server short of database connections answers 503 with Retry-After (nothing was
        // written): a client waits and sends it again, as this one does, a few times at most.
        let res = await t.call("POST", "/v1/jobs", { body: hello("default", { maxAttempts: 1 + r.int(3) }) });
        for (let tries = 0; res.status === 503 && tries < 5; tries++) {
          await new Promise((done) => setTimeout(done, 1000));
          res = await t.call("POST", "/v1/jobs", { body: hello("default", { maxAttempts: 1 + r.int(3) }) });
        }
        expect(
          res.status,
          `${JSON.stringify(res.body)}\nserver errors:\n${t.errors().slice(-3).join("")}`,
        ).toBe(201);
        ids.push(res.body.id);
      }
    };
    const chaos = async () => {
      while (submitted < 1000) {
        const roll = r.int(3);
        const id = r.pick(ids);
        if (roll === 0 && id) await t.call("POST", `/v1/jobs/${id}/cancel`, { body: { reason: "random" } });
        else if (roll === 1 && id) {
          const res = await t.call("POST", `/v1/jobs/${id}/retry`);
          if (res.status === 201) ids.push(res.body.id);
        } else {
          for (const j of await w.claim(5)) {
            await w.start(j);
            await w.finish(j, r.int(4) === 0 ? 1 + r.int(100) : 0);
          }
        }
      }
    };
    await Promise.all([...Array.from({ length: 50 }, submitter), chaos(), chaos()]);
    await converged(t.call, c.app, "the console to equal the API after the burst", 60_000);
    // It held every job, each in the state the API gives it.
    expect(c.app.stores.jobs.list().length).toBeGreaterThanOrEqual(1000);
  }, 180_000);
});

/**
 * Random sequences of every kind of change, each run against a fresh API with a console attached;
 * after each sequence the console's model must equal the listings. On PGlite, the embedded path.
 */
describe("property: after any sequence of changes the console's model equals the listings [pglite]", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`seed ${seed}`, async () => {
      const t = await startTestApi({ adapter: "pglite" });
      const c = attach(t);
      try {
        await c.waitForText("Overview");
        const r = rng(seed);
        const jobs: string[] = [];
        const agents: { id: string; w: ReturnType<typeof worker>; held: { id: string; epoch: number }[] }[] =
          [];
        for (let step = 0; step < 80; step++) {
          const roll = r.int(9);
          const job = r.pick(jobs);
          const agent = r.pick(agents);
          if (roll <= 1) {
            const res = await t.call("POST", "/v1/jobs", {
              body: hello("default", { maxAttempts: 1 + r.int(2) }),
            });
            jobs.push(res.body.id);
          } else if (roll === 2 && job) {
            await t.call("POST", `/v1/jobs/${job}/cancel`, { body: { reason: `seed ${seed}` } });
          } else if (roll === 3 && job) {
            const res = await t.call("POST", `/v1/jobs/${job}/retry`);
            if (res.status === 201) jobs.push(res.body.id);
          } else if (roll === 4 && agents.length < 4) {
            const id = await registerAgent(t, `prop-${seed}-${agents.length}`, { queue: "default" });
            agents.push({ id, w: worker(t.call, t.tokens.agent, id), held: [] });
          } else if (roll === 5 && agent) {
            const got = await agent.w.claim(1 + r.int(2));
            for (const j of got) await agent.w.start(j);
            agent.held.push(...got);
          } else if (roll === 6 && agent && agent.held.length > 0) {
            const j = agent.held.shift();
            if (j) await agent.w.finish(j, r.int(3) === 0 ? 2 : 0);
          } else if (roll === 7 && agent) {
            const running = agent.held.map((j) => ({ jobId: j.id, epoch: j.epoch }));
            await agent.w.heartbeat(running.length > 0 ? "busy" : "idle", running);
          } else if (roll === 8) {
            if (agent && r.int(2) === 0) {
              // It leaves with what it holds: those jobs are requeued or fail, out of attempts.
              await t.call("POST", "/v1/agent/deregister", {
                token: t.tokens.agent,
                body: { agentId: agent.id },
              });
              agents.splice(agents.indexOf(agent), 1);
            } else {
              await t.call("PUT", "/v1/fleet", { body: { mode: "manual", replicas: r.int(6) } });
            }
          }
        }
        await converged(t.call, c.app, `the console to equal the API (seed ${seed})`);
      } finally {
        c.close();
        await t.close();
      }
    }, 60_000);
  }
});
