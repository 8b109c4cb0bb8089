import { Counter, Histogram, Registry } from "prom-client";

export function createWorkerMetrics() {
  const registry = new Registry();
  return {
    registry,
    jobsRun: new Counter({
      name: "skiff_worker_jobs_total",
      help: "Jobs run by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    stepDuration: new Histogram({
      name: "skiff_worker_step_duration_seconds",
      help: "Step durations by outcome",
      labelNames: ["outcome"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    stepFailures: new Counter({
      name: "skiff_worker_step_failures_total",
      help: "Steps that did not succeed, by step name and outcome",
      labelNames: ["step", "outcome"],
      registers: [registry],
    }),
    logBytes: new Counter({
      name: "skiff_worker_log_bytes_total",
      help: "Output bytes captured",
      registers: [registry],
    }),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
