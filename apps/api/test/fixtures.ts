import type { RouteDef } from "../src/index.ts";
import { hello, registerAgent, type TestApi } from "./harness.ts";

export interface SampleRequest {
  path: string;
  body?: unknown;
  /** An SSE stream that stays open: check the status and headers only. */
  stream?: boolean;
}

let n = 0;
const unique = (p: string) => `${p}${++n}`;

async function claimedJob(t: TestApi) {
  const queue = unique("mq");
  const agentId = await registerAgent(t, unique("ma"), { queue });
  const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(queue) })).body;
  const claim = (
    await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } })
  ).body;
  return { agentId, jobId: job.id as string, epoch: claim.jobs[0].epoch as number };
}

async function finishedJob(t: TestApi) {
  const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(unique("fq")) }))
    .body;
  await t.call("POST", `/v1/jobs/${job.id}/cancel`, {
    token: t.tokens.operator,
    body: { reason: "fixture" },
  });
  return job.id as string;
}

/** A valid request for each route, built fresh on every call so mutating routes can succeed repeatedly. */
export async function sampleRequest(t: TestApi, route: RouteDef): Promise<SampleRequest> {
  const key = `${route.method} ${route.url}`;
  switch (key) {
    case "POST /v1/jobs":
      return { path: "/v1/jobs", body: hello() };
    case "GET /v1/jobs":
      return { path: "/v1/jobs?limit=5" };
    case "GET /v1/jobs/:id":
      return { path: `/v1/jobs/${await finishedJob(t)}` };
    case "POST /v1/jobs/:id/cancel": {
      const job = (await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello(unique("cq")) }))
        .body;
      return { path: `/v1/jobs/${job.id}/cancel`, body: { reason: "matrix" } };
    }
    case "POST /v1/jobs/:id/retry":
      return { path: `/v1/jobs/${await finishedJob(t)}/retry` };
    case "GET /v1/jobs/:id/logs":
      return { path: `/v1/jobs/${await finishedJob(t)}/logs` };
    case "GET /v1/jobs/:id/logs/stream":
      return { path: `/v1/jobs/${await finishedJob(t)}/logs/stream` };
    case "GET /v1/events":
      return { path: "/v1/events?topics=jobs", stream: true };
    case "GET /v1/whoami":
      return { path: "/v1/whoami" };
    case "GET /v1/agents":
      return { path: "/v1/agents" };
    case "GET /v1/agents/:id":
      return { path: `/v1/agents/${await registerAgent(t, unique("ga"))}` };
    case "POST /v1/agents/:id/drain":
      return { path: `/v1/agents/${await registerAgent(t, unique("da"))}/drain`, body: { reason: "matrix" } };
    case "GET /v1/fleet":
      return { path: "/v1/fleet" };
    case "PUT /v1/fleet":
      return { path: "/v1/fleet", body: { mode: "manual", replicas: 2 } };
    case "GET /v1/audit":
      return { path: "/v1/audit?limit=5" };
    case "GET /v1/stats/jobs":
      return { path: "/v1/stats/jobs" };
    case "GET /v1/stats/history":
      return { path: "/v1/stats/history?bucketSeconds=5&buckets=12" };
    case "GET /v1/audit/verify":
      return { path: "/v1/audit/verify" };
    case "POST /v1/audit/verify":
      return { path: "/v1/audit/verify", body: { checkpoints: [] } };
    case "GET /v1/audit/checkpoints":
      return { path: "/v1/audit/checkpoints" };
    case "POST /v1/tokens":
      return { path: "/v1/tokens", body: { name: unique("tok"), role: "viewer" } };
    case "GET /v1/tokens":
      return { path: "/v1/tokens" };
    case "DELETE /v1/tokens/:id": {
      const made = (await t.call("POST", "/v1/tokens", { body: { name: unique("del"), role: "viewer" } }))
        .body;
      return { path: `/v1/tokens/${made.id}` };
    }
    case "POST /v1/agent/register":
      return {
        path: "/v1/agent/register",
        body: {
          name: unique("reg"),
          version: "0.1.0",
          slots: 1,
          labels: {},
          sandbox: "bwrap",
          resources: {},
        },
      };
    case "POST /v1/agent/heartbeat":
      return {
        path: "/v1/agent/heartbeat",
        body: { agentId: await registerAgent(t, unique("hb")), status: "idle", running: [] },
      };
    case "POST /v1/agent/claim":
      return {
        path: "/v1/agent/claim",
        body: { agentId: await registerAgent(t, unique("cl"), { queue: unique("none") }), max: 1 },
      };
    case "POST /v1/agent/jobs/:id/events": {
      const c = await claimedJob(t);
      return {
        path: `/v1/agent/jobs/${c.jobId}/events`,
        body: {
          agentId: c.agentId,
          epoch: c.epoch,
          events: [{ type: "log", seq: 1, step: 0, stream: "stdout", text: "x" }],
        },
      };
    }
    case "POST /v1/agent/jobs/:id/finish": {
      const c = await claimedJob(t);
      return {
        path: `/v1/agent/jobs/${c.jobId}/finish`,
        body: { agentId: c.agentId, epoch: c.epoch, outcome: "succeeded", exitCode: 0 },
      };
    }
    case "POST /v1/agent/deregister":
      return { path: "/v1/agent/deregister", body: { agentId: await registerAgent(t, unique("bye")) } };
    default:
      throw new Error(`no sample request for ${key}: add one to test/fixtures.ts`);
  }
}
