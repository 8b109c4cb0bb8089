import type { Store } from "@skiff/store";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The API's Prometheus metrics, in a registry of its own so that several apps can share a process. */
export function createMetrics(store: Store, claimWaiters: () => number) {
  const registry = new Registry();
  const jobs = new Gauge({
    name: "skiff_jobs",
    help: "Jobs by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await store.countJobsByState();
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  const queueDepth = new Gauge({
    name: "skiff_queue_depth",
    help: "Jobs waiting for a worker",
    registers: [registry],
    async collect() {
      this.set((await store.countJobsByState()).queued);
    },
  });
  const agents = new Gauge({
    name: "skiff_agents",
    help: "Agents by status (idle, busy, draining, degraded, offline)",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      for (const [status, n] of Object.entries(await store.countAgents())) this.set({ status }, n);
    },
  });
  const claimLatency = new Histogram({
    name: "skiff_claim_latency_seconds",
    help: "Time from a job's submission to its claim by an agent",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 120],
    registers: [registry],
  });
  const heartbeats = new Counter({
    name: "skiff_heartbeats_total",
    help: "Heartbeats received",
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: "skiff_http_request_duration_seconds",
    help: "HTTP request durations by route and status",
    labelNames: ["method", "route", "status"],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [registry],
  });
  const waiting = new Gauge({
    name: "skiff_claim_waiters",
    help: "Claims long-polling on this replica for work",
    registers: [registry],
    collect() {
      this.set(claimWaiters());
    },
  });
  const sseClients = new Gauge({
    name: "skiff_sse_clients",
    help: "Open SSE streams",
    registers: [registry],
  });
  const reaperRuns = new Counter({
    name: "skiff_reaper_runs_total",
    help: "Reaper passes by result",
    labelNames: ["result"],
    registers: [registry],
  });
  return {
    registry,
    waiting,
    jobs,
    queueDepth,
    agents,
    claimLatency,
    heartbeats,
    httpDuration,
    sseClients,
    reaperRuns,
  };
}
export type Metrics = ReturnType<typeof createMetrics>;
