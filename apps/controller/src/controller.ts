import type { Store } from "@skiff/store";
import { type DecideOptions, type DecideState, type Decision, decide, nextState } from "./decide.ts";
import { LeaderElector, type LeaderState } from "./leader.ts";
import type { Scaler } from "./scalers/types.ts";

export interface ControllerOptions {
  holder: string;
  tickMs: number;
  slotsPerWorker: number;
  decide: DecideOptions;
  /**
   * The queues the workers it starts serve (default `default`). Only jobs queued on these count
   * towards the fleet's size: a queue no worker of this fleet would serve cannot be drained by
   * starting more of them.
   */
  queues?: readonly string[];
  /** Stop busy workers on scale-down too (never by default). */
  forceScaleDown?: boolean;
  log(msg: string, fields?: Record<string, unknown>): void;
}

export interface ControllerSnapshot {
  holder: string;
  leader: LeaderState;
  scaler: string;
  desired: number | null;
  actual: number;
  draining: string[];
  workers: string[];
  lastDecisions: (Decision & { at: string })[];
}

/**
 * The reconcile loop: on the leader only, reads the fleet settings and the queue, decides the size,
 * records the decision (fenced by the leader epoch) and moves the scaler towards it. Scale-down
 * drains idle workers and lets them leave by themselves; a busy worker is never stopped.
 */
export class Controller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private state: DecideState = { current: 0, lastUpAt: 0, lastDownAt: 0, wantLessSince: null };
  private lastDesired: number | null = null;
  /** The worker count last stored, and under which epoch (a new epoch stores it afresh). */
  private reported: { epoch: number; workers: number } | null = null;
  private readonly draining = new Set<string>();
  private readonly decisions: (Decision & { at: string })[] = [];
  readonly leader: LeaderElector;

  constructor(
    private readonly store: Store,
    private readonly scaler: Scaler,
    private readonly opts: ControllerOptions,
  ) {
    this.leader = new LeaderElector(store, opts.holder, 1_000, (s) =>
      opts.log(s.leading ? "leading" : "not leading", { epoch: s.epoch, holder: s.holder }),
    );
  }

  start(): void {
    this.stopped = false;
    this.leader.start();
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((err) => this.opts.log("reconcile failed; retrying", { err: (err as Error).message }))
        .finally(() => {
          this.running = null;
          this.schedule(this.opts.tickMs);
        });
    }, ms);
  }

  async tick(): Promise<void> {
    const lead = this.leader.current;
    if (!lead.leading || lead.epoch === null) return;
    await this.scaler.sync?.();
    const [settings, counts, served, agents] = await Promise.all([
      this.store.getFleet(),
      this.store.countJobsByState(),
      this.store.countQueuedOn(this.opts.queues ?? ["default"]),
      this.store.listAgents({ includeOffline: false }),
    ]);
    const managed = new Set(this.scaler.list());
    const onlineNames = new Set(agents.map((a) => a.name));
    for (const name of this.draining) {
      const gone = !managed.has(name);
      // Still registered: it is finishing its jobs.
      if (!gone && onlineNames.has(name)) continue;
      // Deregistered but still running, on a platform with nothing to release: wait for its exit.
      if (!gone && !this.scaler.release) continue;
      // It drained and deregistered, and may already have exited (a worker exits right after it
      // deregisters, so one tick often sees both): either way the platform must now lower its count
      // by this worker and clear it away (an exited compose container would otherwise be restarted
      // or left behind), without a busy victim.
      if (this.scaler.release) await this.scaler.release(name);
      this.draining.delete(name);
    }
    // What the fleet runs now, draining workers included until they are gone: the consoles' "actual".
    if (this.reported?.epoch !== lead.epoch || this.reported.workers !== managed.size) {
      await this.store.reportWorkers(lead.epoch, managed.size);
      this.reported = { epoch: lead.epoch, workers: managed.size };
    }
    const mine = agents.filter((a) => managed.has(a.name));
    const busy = mine.filter((a) => a.runningJobs.length > 0 || a.activity === "busy").length;
    const active = [...managed].filter((n) => !this.draining.has(n));
    const now = Date.now();
    if (this.lastDesired === null) this.state = { ...this.state, current: active.length };
    const d = decide(
      settings,
      { queued: served, workers: active.length, busy, slotsPerWorker: this.opts.slotsPerWorker },
      this.state,
      this.opts.decide,
      now,
    );
    if (d.desired !== this.lastDesired) {
      const ok = (
        await this.store.recordScaleDecision(
          {
            leaderEpoch: lead.epoch,
            desired: d.desired,
            actual: active.length,
            reason: d.reason,
            // Jobs on queues this fleet does not serve, left out of the count: said, not hidden.
            inputs: { ...d.inputs, scaler: this.scaler.kind, unservedQueued: counts.queued - served },
          },
          this.lastDesired,
          { actor: this.opts.holder, role: "system" },
        )
      ).value;
      if (!ok) {
        this.opts.log("a newer leader exists; stepping down", { epoch: lead.epoch });
        this.leader.deposed();
        return;
      }
      this.decisions.unshift({ ...d, at: new Date(now).toISOString() });
      this.decisions.length = Math.min(this.decisions.length, 50);
      this.opts.log("desired size", { desired: d.desired, actual: active.length, reason: d.reason });
      this.lastDesired = d.desired;
    }
    this.state = nextState(this.state, d.target, d.desired, now);
    await this.apply(d.desired, active, mine);
  }

  private async apply(
    desired: number,
    active: string[],
    mine: { id: string; name: string; activity: string; runningJobs: string[] }[],
  ) {
    if (desired > active.length) {
      await this.scaler.add(desired - active.length);
      return;
    }
    let extra = active.length - desired;
    if (extra <= 0) return;
    const byName = new Map(mine.map((a) => [a.name, a]));
    // Idle ones first; busy ones only when forced. A worker not registered yet is left alone.
    const candidates = active
      .map((name) => byName.get(name))
      .filter((a): a is NonNullable<typeof a> => a !== undefined)
      .filter((a) => this.opts.forceScaleDown || (a.runningJobs.length === 0 && a.activity === "idle"));
    for (const agent of candidates) {
      if (extra <= 0) break;
      await this.store.drainAgent(agent.id, "scale down", {
        actor: this.opts.holder,
        role: "system",
      });
      this.draining.add(agent.name);
      extra--;
    }
  }

  snapshot(): ControllerSnapshot {
    const workers = this.scaler.list();
    return {
      holder: this.opts.holder,
      leader: this.leader.current,
      scaler: this.scaler.kind,
      desired: this.lastDesired,
      actual: workers.filter((w) => !this.draining.has(w)).length,
      draining: [...this.draining],
      workers,
      lastDecisions: this.decisions.slice(0, 20),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.leader.stop();
  }
}
