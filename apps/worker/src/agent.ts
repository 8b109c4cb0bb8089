import { existsSync, readdirSync, rmSync } from "node:fs";
import { freemem, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import type { AgentCommand, SandboxKind } from "@skiff/protocol";
import { type AgentClient, ApiError, ApiUnreachable } from "./client.ts";
import type { WorkerMetrics } from "./metrics.ts";
import { JobRun } from "./runner.ts";
import type { SandboxDriver } from "./sandbox/types.ts";
import { diskRoom, unmountLeftovers } from "./workspace.ts";

export interface AgentOptions {
  name: string;
  version: string;
  slots: number;
  labels: Record<string, string>;
  workRoot: string;
  graceMs: number;
  drainTimeoutMs: number;
  claimWaitMs: number;
  logBatchMs: number;
  logBatchBytes: number;
  logCapBytes: number;
  /** Secrets jobs may ask for by name (the worker's SKIFF_SECRET_<NAME> variables). */
  secrets?: Record<string, string>;
  defaultDiskMb?: number;
  maxDiskMb?: number;
}

export interface AgentLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

type Phase = "starting" | "running" | "draining" | "stopped";

/** Waits `ms`, or until `signal` aborts; the abort listener goes with the timer either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The worker's agent: registers, heartbeats on the interval the API gives (with jitter), long-polls
 * for as many jobs as it has free slots, runs them, and drains on request or on stop.
 */
export class Agent {
  private agentId: string | null = null;
  private phase: Phase = "starting";
  private heartbeatMs = 10_000;
  private readonly runs = new Map<string, JobRun>();
  private readonly stopping = new AbortController();
  private claimAbort: AbortController | null = null;
  private slotFreed: (() => void) | null = null;
  private loops: Promise<void>[] = [];
  private drained: Promise<void> | null = null;
  private drainReason = "";
  private markStopped: () => void = () => {};
  /** Resolves once the agent has drained and deregistered, whoever asked for it. */
  readonly stopped = new Promise<void>((resolve) => {
    this.markStopped = resolve;
  });

  constructor(
    private readonly client: AgentClient,
    private readonly driver: SandboxDriver,
    private readonly opts: AgentOptions,
    private readonly metrics: WorkerMetrics,
    private readonly log: AgentLogger,
  ) {}

  get id(): string | null {
    return this.agentId;
  }

  get ready(): boolean {
    return this.phase === "running";
  }

  get state(): Phase {
    return this.phase;
  }

  get running(): string[] {
    return [...this.runs.values()].map((r) => r.jobId);
  }

  async start(): Promise<void> {
    const orphans = await this.driver.reapOrphans(this.opts.name).catch((err) => {
      this.log.warn({ err: (err as Error).message }, "could not reap orphans of a previous run");
      return [] as string[];
    });
    const own = join(this.opts.workRoot, this.opts.name);
    // Workspaces with a disk limit are mounted filesystems: unmount them before removing.
    await unmountLeftovers(own);
    const leftovers = existsSync(own) ? readdirSync(own) : [];
    for (const dir of leftovers) rmSync(join(own, dir), { recursive: true, force: true });
    if (orphans.length + leftovers.length > 0) {
      this.log.warn(
        { sandboxes: orphans, workspaces: leftovers },
        "removed what a previous run of this worker left behind",
      );
    }
    await this.register();
    this.phase = "running";
    this.loops = [this.heartbeatLoop(), this.claimLoop()];
  }

  private async register(): Promise<void> {
    let backoff = 500;
    for (;;) {
      try {
        const res = await this.client.register({
          name: this.opts.name,
          version: this.opts.version,
          slots: this.opts.slots,
          labels: this.opts.labels,
          sandbox: this.driver.kind as SandboxKind,
          resources: this.resources(),
        });
        this.agentId = res.agentId;
        this.heartbeatMs = res.heartbeatIntervalMs;
        this.log.info(
          { agentId: res.agentId, sandbox: this.driver.kind, slots: this.opts.slots },
          "registered",
        );
        if (this.driver.kind === "none") {
          this.log.warn(
            { agentId: res.agentId },
            "UNSAFE: steps run without any sandbox (--unsafe-no-sandbox)",
          );
        }
        return;
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          throw new Error(
            `the API refused to register this worker (${err.code}: ${err.message}); an agent token comes from \`skiff tokens create --role agent\``,
          );
        }
        if (this.stopping.signal.aborted) throw new Error("stopped before the API could be reached");
        this.log.warn({ err: (err as Error).message, retryInMs: backoff }, "API not reachable; retrying");
        await sleep(backoff, this.stopping.signal);
        backoff = Math.min(10_000, backoff * 2);
      }
    }
  }

  private resources() {
    const total = totalmem() / 2 ** 20;
    return {
      load1: loadavg()[0] ?? 0,
      memoryTotalMb: Math.round(total),
      memoryUsedMb: Math.round(total - freemem() / 2 ** 20),
    };
  }

  private activity(): "idle" | "busy" | "draining" {
    if (this.phase === "draining") return "draining";
    return this.runs.size > 0 ? "busy" : "idle";
  }

  private async heartbeatLoop(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      const jitter = this.heartbeatMs * (0.9 + Math.random() * 0.2);
      await sleep(jitter, this.stopping.signal);
      if (this.stopping.signal.aborted || !this.agentId) return;
      await this.heartbeatOnce();
    }
  }

  private beating: Promise<void> | null = null;
  private deregistering = false;

  /** Sends one heartbeat now; overlapping calls share the one in flight. */
  heartbeatOnce(): Promise<void> {
    if (!this.agentId || this.deregistering) return Promise.resolve();
    this.beating ??= this.beat().finally(() => {
      this.beating = null;
    });
    return this.beating;
  }

  private async beat(): Promise<void> {
    const agentId = this.agentId;
    if (!agentId) return;
    try {
      const res = await this.client.heartbeat({
        agentId,
        status: this.activity(),
        running: [...this.runs.values()].map((r) => ({ jobId: r.jobId, epoch: r.epoch })),
        resources: this.resources(),
      });
      for (const command of res.commands) this.obey(command);
    } catch (err) {
      if (this.gone(err, agentId) && this.phase === "running") {
        this.log.warn(
          { agentId, why: (err as Error).message },
          "the API no longer takes this agent; registering again",
        );
        await this.renew(agentId);
        return;
      }
      this.log.warn({ err: (err as Error).message }, "heartbeat failed; the API may be restarting");
    }
  }

  /**
   * Whether the API has let go of the agent: it does not know it any more, or refuses the agent's
   * own credential, which dies when the agent is deregistered or marked offline.
   */
  private gone(err: unknown, agentId: string): boolean {
    if (!(err instanceof ApiError)) return false;
    return err.code === "not_found" || (err.status === 401 && this.client.hasCredential(agentId));
  }

  private renewing: Promise<void> | null = null;

  /**
   * Registers again, once, however many loops find the agent `staleId` gone. When the API refuses
   * the registration token too, the worker drains and stops rather than crash its process.
   */
  private renew(staleId: string): Promise<void> {
    if (this.agentId !== staleId) return Promise.resolve();
    this.renewing ??= this.register()
      .catch((err) => {
        this.log.error({ err: (err as Error).message }, "could not register again; stopping");
        void this.drain("the API refused to register this worker again");
      })
      .finally(() => {
        this.renewing = null;
      });
    return this.renewing;
  }

  private obey(command: AgentCommand): void {
    if (command.type === "drain") {
      if (this.phase === "running") {
        this.log.info({ reason: command.reason }, "drain requested");
        void this.drain(command.reason);
      }
      return;
    }
    const run = this.runs.get(runKey(command.jobId, command.epoch));
    if (run) {
      this.log.info({ jobId: command.jobId, reason: command.reason }, "cancel requested");
      if (command.reason === "lease_lost") run.loseLease("the API took the job back");
      else run.cancel(command.reason);
    }
  }

  private shortOfDisk = false;

  private async claimLoop(): Promise<void> {
    let backoff = 500;
    while (this.phase === "running" && !this.stopping.signal.aborted) {
      const free = this.opts.slots - this.runs.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          this.slotFreed = resolve;
        });
        continue;
      }
      const agentId = this.agentId;
      if (!agentId) return;
      // No more jobs than their disk limits fit in the free disk: a job claimed without room would
      // only fail, and a worker short of disk would fail the whole queue that way.
      const room = await diskRoom(
        join(this.opts.workRoot, this.opts.name),
        this.opts.maxDiskMb ?? this.opts.defaultDiskMb ?? 10_240,
      ).catch(() => null);
      // A drain that began while the disk was being looked at found no claim to abort: claiming now
      // would hold the drain (and the process's exit) for a whole long-poll.
      if (this.phase !== "running" || this.stopping.signal.aborted) return;
      if (room === 0) {
        if (!this.shortOfDisk)
          this.log.warn(
            { workRoot: this.opts.workRoot },
            "not enough free disk for another job's disk limit; claiming again when there is",
          );
        this.shortOfDisk = true;
        // A job ending frees its promise: look again then, or in a few seconds (space freed elsewhere).
        await Promise.race([
          sleep(5_000, this.stopping.signal),
          new Promise<void>((resolve) => {
            this.slotFreed = resolve;
          }),
        ]);
        continue;
      }
      this.shortOfDisk = false;
      this.claimAbort = new AbortController();
      try {
        const askedAt = Date.now();
        const res = await this.client.claim(
          { agentId, max: room === null ? free : Math.min(free, room), waitMs: this.opts.claimWaitMs },
          this.claimAbort.signal,
        );
        for (const claimed of res.jobs) this.launch(claimed);
        if (res.jobs.length === 0 && Date.now() - askedAt < this.opts.claimWaitMs / 2) {
          // Empty long before the wait ran out: the API is refusing this agent work (a drain was
          // requested, or it is shutting down). Without this the loop would re-claim in a tight
          // spin, hundreds of requests a second, until the next heartbeat brought the drain; so
          // ask now (the drain comes back as a command) and back off before claiming again.
          await this.heartbeatOnce();
          if (this.phase === "running") await sleep(backoff, this.stopping.signal);
          backoff = Math.min(10_000, backoff * 2);
        } else {
          backoff = 500;
        }
      } catch (err) {
        if (this.phase !== "running") return;
        if (this.gone(err, agentId)) await this.renew(agentId);
        else if (!(err instanceof ApiUnreachable) || !this.claimAbort.signal.aborted) {
          this.log.warn({ err: (err as Error).message, retryInMs: backoff }, "claim failed; retrying");
          await sleep(backoff, this.stopping.signal);
          backoff = Math.min(10_000, backoff * 2);
        }
      } finally {
        this.claimAbort = null;
      }
    }
  }

  private launch(claimed: ConstructorParameters<typeof JobRun>[0]): void {
    const agentId = this.agentId;
    if (!agentId) return;
    this.log.info({ jobId: claimed.job.id, attempt: claimed.attempt, epoch: claimed.epoch }, "job claimed");
    const run = new JobRun(claimed, {
      client: this.client,
      agentId,
      workerName: this.opts.name,
      driver: this.driver,
      workRoot: this.opts.workRoot,
      graceMs: this.opts.graceMs,
      logBatchMs: this.opts.logBatchMs,
      logBatchBytes: this.opts.logBatchBytes,
      logCapBytes: this.opts.logCapBytes,
      metrics: this.metrics,
      secrets: this.opts.secrets,
      defaultDiskMb: this.opts.defaultDiskMb,
      maxDiskMb: this.opts.maxDiskMb,
      log: (msg, fields) => this.log.info(fields ?? {}, msg),
    });
    // Keyed by job and epoch: a job requeued to this worker while its lost attempt is still being
    // torn down is a second run, and each holds its own slot until it is gone.
    const key = runKey(run.jobId, run.epoch);
    this.runs.set(key, run);
    void this.heartbeatOnce();
    run.done
      .catch((err) => this.log.error({ jobId: run.jobId, err: (err as Error).message }, "job run failed"))
      .finally(() => {
        if (this.runs.get(key) === run) this.runs.delete(key);
        this.slotFreed?.();
        this.slotFreed = null;
        void this.heartbeatOnce();
      });
  }

  /**
   * Stops taking work, lets running jobs finish up to the drain timeout, cancels what is left,
   * deregisters. Calling it again returns the same promise.
   */
  drain(reason = "stopping"): Promise<void> {
    if (this.drained) return this.drained;
    this.drainReason = reason;
    this.phase = "draining";
    this.claimAbort?.abort();
    this.slotFreed?.();
    this.drained = (async () => {
      void this.heartbeatOnce();
      const all = Promise.all([...this.runs.values()].map((r) => r.done.catch(() => {})));
      // The drain-timeout timer is cleared once the jobs are done: left pending it would keep a
      // drained `skiff worker` process alive for the whole drain timeout (5 min by default).
      const settled = new AbortController();
      const timedOut = await Promise.race([
        all.then(() => false),
        sleep(this.opts.drainTimeoutMs, settled.signal).then(() => !settled.signal.aborted),
      ]);
      settled.abort();
      if (timedOut) {
        this.log.warn(
          { running: this.running, drainTimeoutMs: this.opts.drainTimeoutMs },
          "drain timeout; canceling what is left",
        );
        for (const r of this.runs.values())
          r.cancel(`worker drained (${this.drainReason}) before the job finished`);
        await all;
      }
      this.stopping.abort();
      await Promise.all(this.loops);
      // No heartbeat may land after the deregistration: it would mark the agent online again.
      this.deregistering = true;
      await this.beating;
      if (this.agentId) {
        await this.client
          .deregister(this.agentId)
          .catch((err) => this.log.warn({ err: (err as Error).message }, "deregister failed"));
      }
      this.phase = "stopped";
      this.log.info({ reason: this.drainReason }, "drained and deregistered");
      this.markStopped();
    })();
    return this.drained;
  }

  /** A second stop: cancel running jobs at once. */
  force(): void {
    for (const r of this.runs.values()) r.cancel("worker stopped");
  }
}

function runKey(jobId: string, epoch: number): string {
  return `${jobId}@${epoch}`;
}
