import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { type Bus, createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentClient, ApiError } from "../src/client.ts";
import { type RunningWorker, startWorker } from "../src/index.ts";
import { silent } from "./stack.ts";

/**
 * A real worker against a real API (PGlite) with a scoped agent token, which only registers: every
 * later call has to go with the credential registration returned. Steps run with
 * --unsafe-no-sandbox because what is under test is the protocol, not a sandbox.
 */
describe("the worker's own agent credential", { timeout: 60_000 }, () => {
  let store: Store;
  let bus: Bus;
  let api: Api;
  let url: string;
  let worker: RunningWorker;
  let workRoot: string;
  const operator = newTokenSecret();
  const registration = newTokenSecret();

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operator}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await res.json()) as any;
  };
  const submit = (run: string) =>
    call("POST", "/v1/jobs", { name: "t", queue: "cred", steps: [{ name: "s", run }] });
  const final = (jobId: string) =>
    waitFor(
      `job ${jobId} to finish`,
      async () => {
        const job = await call("GET", `/v1/jobs/${jobId}`);
        return ["succeeded", "failed", "canceled", "timed_out"].includes(job.state) ? job : undefined;
      },
      30_000,
      50,
    );

  beforeAll(async () => {
    store = await openStore({});
    bus = await createBus({});
    api = buildApi({
      config: { port: 0, heartbeatIntervalMs: 300, offlineAfterMs: 60_000, reaperIntervalMs: 60_000 },
      store,
      bus,
      logger: silent,
    });
    url = await api.listen();
    const system = { actor: "t", role: "system" };
    await store.createToken({ name: "olivia", role: "operator", hash: hashToken(operator) }, system);
    await store.createToken(
      { name: "cred-pool", role: "agent", hash: hashToken(registration), scope: { queues: ["cred"] } },
      system,
    );
    workRoot = mkdtempSync(join(tmpdir(), "skiff-work-"));
    worker = await startWorker(
      {
        apiUrl: url,
        token: registration,
        name: "cred-worker",
        slots: 1,
        labels: { queue: "cred" },
        unsafeNoSandbox: true,
        healthPort: null,
        workRoot,
        graceMs: 500,
        drainTimeoutMs: 5_000,
        claimWaitMs: 1_000,
        logBatchMs: 50,
      },
      silent,
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await api?.shutdown();
    await bus?.close();
    await store?.close();
    if (workRoot) rmSync(workRoot, { recursive: true, force: true });
  });

  it("runs jobs with the credential, since the scoped token alone may not claim", async () => {
    const job = await submit("echo via credential");
    expect(await final(job.id)).toMatchObject({ state: "succeeded", agentId: worker.agent.id });
  });

  it("registers again when its credential dies with a reaped agent, and the lost job runs on the new one", async () => {
    const first = worker.agent.id;
    if (!first) throw new Error("the worker has no agent id");
    const long = await submit("sleep 30");
    await waitFor(
      "the long job to run",
      async () => (await call("GET", `/v1/jobs/${long.id}`)).state === "running",
    );
    // The agent falls silent as far as the API can tell, and the reaper takes it and its job back.
    await store.db.query("update agents set last_heartbeat_at = now() - interval '1 hour' where id = $1", [
      first,
    ]);
    await api.reaper.runOnce();

    const second = await waitFor("the worker to register again", () => {
      const id = worker.agent.id;
      return id && id !== first ? id : undefined;
    });
    // The old run learned its lease was gone (its credential is refused) instead of retrying for
    // ever, so the slot came free and the requeued attempt ran on the new agent.
    await waitFor("the requeued attempt to be claimed by the new agent", async () => {
      const job = await call("GET", `/v1/jobs/${long.id}`);
      return job.attempt === 2 && job.agentId === second;
    });
    expect(await call("POST", `/v1/jobs/${long.id}/cancel`, { reason: "done with it" })).toMatchObject({
      state: expect.stringMatching(/^cancel/),
    });
    const next = await submit("echo after re-registering");
    expect(await final(next.id)).toMatchObject({ state: "succeeded", agentId: second });

    const agents = (await call("GET", "/v1/agents")).items as { id: string; status: string }[];
    expect(agents.find((a) => a.id === first)?.status).toBe("offline");
    expect(agents.find((a) => a.id === second)?.status).toBe("online");
  });

  it("a job call refused for a dead credential reaches the run as lease_lost, so the run stops", async () => {
    const client = new AgentClient(url, registration);
    try {
      const { agentId } = await client.register({
        name: "by-hand",
        version: "0",
        slots: 1,
        labels: { queue: "cred" },
        sandbox: "none",
        resources: {},
      });
      expect(client.hasCredential(agentId)).toBe(true);
      await client.deregister(agentId);
      const refused = (p: Promise<unknown>) =>
        p.then(
          () => null,
          (err: unknown) => err,
        );
      const events = await refused(client.events("job_x", { agentId, epoch: 1, events: [] }));
      expect(events).toBeInstanceOf(ApiError);
      expect(events).toMatchObject({ status: 409, code: "lease_lost" });
      const finish = await refused(
        client.finish("job_x", { agentId, epoch: 1, outcome: "succeeded", exitCode: 0 }),
      );
      expect(finish).toMatchObject({ status: 409, code: "lease_lost" });
      // Calls that are not about a job keep the API's answer: the agent loop registers again on it.
      expect(
        await refused(client.heartbeat({ agentId, status: "idle", running: [], resources: {} })),
      ).toMatchObject({
        status: 401,
        code: "unauthorized",
      });
    } finally {
      await client.close();
    }
  });
});
