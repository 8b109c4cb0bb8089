import {
  Agent,
  AuditEntry,
  AuditVerifyResult,
  type FleetUpdateBody,
  Job,
  JobCounts,
  JobHistory,
  type JobState,
  JobWithSteps,
} from "@skiff/protocol";
import { type ApiClient, expectPage, expectShape } from "../../client.ts";
import type { Backend, Feed, FeedHandlers } from "./backend.ts";
import { AgentList, FleetView, JobPage, Whoami } from "./schemas.ts";
import { SseFeed } from "./sse.ts";

const EVENT_NAMES = [
  "ready",
  "reset",
  "shutdown",
  "agent.registered",
  "agent.heartbeat",
  "agent.status",
  "job.created",
  "job.state",
  "fleet.changed",
  "audit.appended",
] as const;

/** The console's view of the HTTP API: every answer checked against the protocol's schemas. */
export class HttpBackend implements Backend {
  constructor(private readonly client: ApiClient) {}

  get baseUrl(): string {
    return this.client.baseUrl;
  }

  async whoami() {
    return expectShape(Whoami, await this.client.get("/v1/whoami"), "whoami");
  }

  async listAgents() {
    return expectShape(AgentList, await this.client.get("/v1/agents"), "agent list").items;
  }

  async getAgent(id: string) {
    return expectShape(Agent, await this.client.get(`/v1/agents/${encodeURIComponent(id)}`), "agent");
  }

  async drainAgent(id: string, reason: string) {
    await this.client.post(`/v1/agents/${encodeURIComponent(id)}/drain`, { reason });
  }

  async listJobs(query: { state?: JobState; limit: number }) {
    return (await this.listJobPage(query)).items;
  }

  async listJobPage(query: { state?: JobState; limit: number; cursor?: string }) {
    return expectShape(JobPage, await this.client.get("/v1/jobs", query), "job list");
  }

  async getJob(id: string) {
    return expectShape(JobWithSteps, await this.client.get(`/v1/jobs/${encodeURIComponent(id)}`), "job");
  }

  async cancelJob(id: string, reason: string) {
    return expectShape(
      Job,
      await this.client.post(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { reason }),
      "job",
    );
  }

  async retryJob(id: string) {
    return expectShape(Job, await this.client.post(`/v1/jobs/${encodeURIComponent(id)}/retry`, {}), "job");
  }

  async submitJob(spec: unknown) {
    return expectShape(Job, await this.client.post("/v1/jobs", spec), "job");
  }

  async getFleet() {
    return expectShape(FleetView, await this.client.get("/v1/fleet"), "fleet");
  }

  async setFleet(body: FleetUpdateBody) {
    return expectShape(FleetView, await this.client.put("/v1/fleet", body), "fleet");
  }

  async listAudit(query: { limit: number; cursor?: string }) {
    return expectPage(AuditEntry, await this.client.get("/v1/audit", query), "audit entry");
  }

  async jobHistory(bucketSeconds: number, buckets: number) {
    return expectShape(
      JobHistory,
      await this.client.get("/v1/stats/history", { bucketSeconds, buckets }),
      "job history",
    ).buckets;
  }

  async jobCounts() {
    return expectShape(JobCounts, await this.client.get("/v1/stats/jobs"), "job counts");
  }

  async verifyAudit() {
    return expectShape(AuditVerifyResult, await this.client.get("/v1/audit/verify"), "audit verification");
  }

  events(topics: readonly string[], handlers: FeedHandlers): Feed {
    return new SseFeed({
      ...handlers,
      url: this.client.url("/v1/events", { topics: topics.join(",") }),
      authorization: this.client.authorization,
      events: EVENT_NAMES,
    }).start();
  }

  jobLog(jobId: string, handlers: FeedHandlers): Feed {
    return new SseFeed({
      ...handlers,
      url: this.client.url(`/v1/jobs/${encodeURIComponent(jobId)}/logs/stream`),
      authorization: this.client.authorization,
      events: ["line", "end"],
      endEvent: "end",
    }).start();
  }
}
