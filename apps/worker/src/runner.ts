import { join } from "node:path";
import { attemptSeqBase, type Outcome } from "@skiff/protocol";
import { type AgentClient, ApiError, ApiUnreachable, type ClaimedJob } from "./client.ts";
import { LineMasker } from "./mask.ts";
import type { WorkerMetrics } from "./metrics.ts";
import { JobReporter } from "./reporter.ts";
import type { SandboxDriver, StepEnd } from "./sandbox/types.ts";
import { secretRefusal } from "./secrets.ts";
import { createWorkspace, type Workspace } from "./workspace.ts";

export interface RunnerDeps {
  client: AgentClient;
  agentId: string;
  workerName: string;
  driver: SandboxDriver;
  workRoot: string;
  graceMs: number;
  logBatchMs: number;
  logBatchBytes: number;
  logCapBytes: number;
  metrics: WorkerMetrics;
  log(msg: string, fields?: Record<string, unknown>): void;
  /** The secrets its operator gave this worker (SKIFF_SECRET_<NAME>); nothing else is resolvable. */
  secrets?: Record<string, string>;
  /** Disk for the workspace and /tmp when the job sets no `resources.diskMb`. */
  defaultDiskMb?: number;
  /** The most a job may ask for; more is refused before anything runs (default: defaultDiskMb). */
  maxDiskMb?: number;
}

/** One claimed job on this worker: runs its steps in order and reports everything. */
export class JobRun {
  private readonly abort = new AbortController();
  private reason: { outcome: "canceled" | "timed_out"; text: string } | null = null;

  /** Read through a method: `cancel()` changes it behind the type checker's narrowing. */
  private why(): { outcome: "canceled" | "timed_out"; text: string } | null {
    return this.reason;
  }
  readonly done: Promise<void>;

  constructor(
    readonly claimed: ClaimedJob,
    private readonly deps: RunnerDeps,
  ) {
    this.done = this.run();
  }

  get jobId(): string {
    return this.claimed.job.id;
  }

  get epoch(): number {
    return this.claimed.epoch;
  }

  private readonly lease = { lost: false };

  /**
   * The API says this attempt no longer holds the job (another may already run it): the step is
   * killed with no grace period, and nothing more is reported.
   */
  loseLease(why: string): void {
    this.lease.lost = true;
    this.cancel(`lease lost: ${why}`);
  }

  /** Ends the job: the running step gets SIGTERM, then SIGKILL after the grace period. */
  cancel(text: string, outcome: "canceled" | "timed_out" = "canceled"): void {
    if (this.reason) return;
    this.reason = { outcome, text };
    this.abort.abort();
  }

  private async run(): Promise<void> {
    const { job, epoch } = this.claimed;
    const spec = job.spec;
    const d = this.deps;
    const started = Date.now();
    const secrets: Record<string, string> = {};
    const missing: string[] = [];
    const held = d.secrets ?? {};
    for (const name of spec.secrets) {
      const value = Object.hasOwn(held, name) ? held[name] : undefined;
      if (value === undefined) missing.push(name);
      else secrets[name] = value;
    }
    // Set by the reporter's 409 or by a heartbeat's lease_lost command (`loseLease`).
    const lease = this.lease;
    const reporter = new JobReporter(d.client, d.agentId, job.id, epoch, {
      batchMs: d.logBatchMs,
      batchBytes: d.logBatchBytes,
      capBytes: d.logCapBytes,
      maxPendingBytes: 8 * 1024 * 1024,
      seqBase: attemptSeqBase(this.claimed.attempt),
      secrets: Object.values(secrets),
      onCancel: () => this.cancel("canceled by an operator"),
      onLeaseLost: (why) => {
        lease.lost = true;
        d.log("lease lost; killing the job", { jobId: job.id, why });
        this.cancel(`lease lost: ${why}`);
      },
      log: d.log,
    });
    const diskMb = spec.resources.diskMb ?? d.defaultDiskMb ?? 10_240;
    const maxDiskMb = d.maxDiskMb ?? d.defaultDiskMb ?? 10_240;
    let ws: Workspace;
    try {
      // A job chooses its disk, but only up to what the worker's operator allows: past it the
      // limit could not be set up (a 16 TiB image), and a job must never run without one for that.
      if (diskMb > maxDiskMb)
        throw new Error(
          `resources.diskMb ${diskMb} is more than this worker allows (${maxDiskMb} MiB, worker.maxDiskMb); ask for less or run it on a worker that allows more`,
        );
      ws = await createWorkspace(join(d.workRoot, d.workerName), `${job.id}-`, diskMb);
    } catch (err) {
      // Without a workspace nothing can run: say why and end the attempt rather than hold the slot.
      const why = `cannot prepare the job's workspace on worker ${d.workerName}: ${(err as Error).message}`;
      reporter.line(null, "system", why);
      await reporter.drain();
      if (!lease.lost && !reporter.leaseLost) await this.finish("failed", null, why);
      d.metrics.jobsRun.inc({ outcome: "failed" });
      return;
    }
    const workspace = ws.path;
    const jobTimer = setTimeout(
      () => this.cancel(`job ran past its timeout of ${spec.timeoutSeconds} s`, "timed_out"),
      spec.timeoutSeconds * 1000,
    );
    let outcome: Outcome = "succeeded";
    let exitCode: number | null = 0;
    let error: string | undefined;
    try {
      if (missing.length > 0) {
        outcome = "failed";
        exitCode = null;
        error = secretRefusal(missing, d.workerName);
        reporter.line(null, "system", error);
      }
      for (const [index, step] of spec.steps.entries()) {
        if (outcome !== "succeeded") break;
        if (this.why()) break;
        reporter.stepStarted(index);
        reporter.line(
          index,
          "system",
          `--- step ${index + 1}/${spec.steps.length}: ${step.name} (network ${step.network})`,
        );
        reporter.line(index, "system", `disk: ${ws.disk}`);
        const stepStart = Date.now();
        const maskers = {
          stdout: new LineMasker(Object.values(secrets), (text) => reporter.line(index, "stdout", text)),
          stderr: new LineMasker(Object.values(secrets), (text) => reporter.line(index, "stderr", text)),
        };
        const remainingJobMs = spec.timeoutSeconds * 1000 - (Date.now() - started);
        let end: StepEnd = await d.driver.run({
          jobId: job.id,
          workerName: d.workerName,
          stepIndex: index,
          command: step.run,
          env: {
            CI: "true",
            SKIFF_JOB_ID: job.id,
            SKIFF_STEP: step.name,
            ...spec.env,
            ...step.env,
            ...secrets,
          },
          workspace,
          network: step.network,
          limits: { ...spec.resources, diskMb },
          image: spec.image,
          onLine: (stream, text) => {
            d.metrics.logBytes.inc(Buffer.byteLength(text));
            if (stream === "system") reporter.line(index, stream, text);
            else maskers[stream].line(text);
          },
          flow: { full: () => reporter.full, room: () => reporter.room() },
          signal: this.abort.signal,
          timeoutMs: Math.max(
            1,
            Math.min(remainingJobMs, (step.timeoutSeconds ?? Number.POSITIVE_INFINITY) * 1000),
          ),
          // Read when the step is stopped: a job whose lease is gone is killed at once, no grace,
          // since another worker may already be running it.
          get graceMs() {
            return lease.lost ? 0 : d.graceMs;
          },
        });
        maskers.stdout.flush();
        maskers.stderr.flush();
        // A step that filled its workspace fails with that reason, even if it ignored the write error;
        // a more specific reason of the driver (memory, process limit) is kept.
        if (ws.full() && (end.outcome === "succeeded" || /^exit code /.test(end.reason))) {
          const before = end.outcome === "failed" ? ` (${end.reason})` : "";
          end = {
            outcome: "failed",
            exitCode: end.exitCode,
            reason: `disk limit of ${diskMb} MiB reached${before}`,
          };
        }
        const seconds = (Date.now() - stepStart) / 1000;
        d.metrics.stepDuration.observe({ outcome: end.outcome }, seconds);
        let stepOutcome = end.outcome;
        // A step killed because the whole job was canceled or ran out of time takes the job's reason.
        const reason = this.why();
        if (end.outcome === "canceled" && reason) stepOutcome = reason.outcome;
        reporter.stepFinished(index, stepOutcome, end.exitCode);
        if (stepOutcome === "succeeded") {
          reporter.line(index, "system", `--- ${step.name} succeeded in ${seconds.toFixed(1)} s`);
          continue;
        }
        const why =
          reason && end.outcome === "canceled" ? reason.text : end.outcome === "succeeded" ? "" : end.reason;
        reporter.line(index, "system", `--- ${step.name} ${stepOutcome.replace("_", " ")}: ${why}`);
        d.metrics.stepFailures.inc({ step: step.name, outcome: stepOutcome });
        outcome = stepOutcome;
        exitCode = end.exitCode;
        error = `step ${step.name}: ${why}`;
      }
      const finalReason = this.why();
      if (outcome === "succeeded" && finalReason) {
        outcome = finalReason.outcome;
        exitCode = null;
        error = finalReason.text;
      }
      await reporter.drain();
      if (!lease.lost && !reporter.leaseLost) await this.finish(outcome, exitCode, error);
      d.metrics.jobsRun.inc({ outcome: lease.lost ? "lease_lost" : outcome });
    } finally {
      clearTimeout(jobTimer);
      await ws
        .destroy()
        .catch((err) =>
          d.log("could not remove a workspace", { jobId: job.id, err: (err as Error).message }),
        );
    }
  }

  /** Reports the result until the API acknowledges it; the lease being gone ends the attempt. */
  private async finish(outcome: Outcome, exitCode: number | null, error: string | undefined): Promise<void> {
    const { job, epoch } = this.claimed;
    let backoff = 200;
    for (;;) {
      try {
        await this.deps.client.finish(job.id, {
          agentId: this.deps.agentId,
          epoch,
          outcome,
          exitCode,
          ...(error ? { error } : {}),
        });
        this.deps.log("job finished", { jobId: job.id, outcome });
        return;
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          this.deps.log("finish refused: the job is no longer ours", { jobId: job.id, code: err.code });
          return;
        }
        // Refused for good (bad input, no permission): retrying cannot help, and a thrown finish would
        // leave the slot's bookkeeping to chance. The reaper's timeout settles the job's state.
        if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
          this.deps.log("finish refused by the API; giving up on reporting it", {
            jobId: job.id,
            status: err.status,
            code: err.code,
          });
          return;
        }
        if (!(err instanceof ApiUnreachable)) throw err;
        await new Promise((r) => setTimeout(r, backoff));
        backoff = Math.min(5_000, backoff * 2);
      }
    }
  }
}
