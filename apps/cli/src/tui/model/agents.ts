import type { Agent, EventPayload } from "@skiff/protocol";
import { Emitter } from "./emitter.ts";
import type { AgentRecord } from "./types.ts";

export interface AgentCounts {
  total: number;
  online: number;
  offline: number;
  idle: number;
  busy: number;
  draining: number;
  degraded: number;
}

/** `worker-2` before `worker-10`; one collator, as making one per comparison is slow at 10,000 rows. */
const BY_NAME = new Intl.Collator(undefined, { numeric: true });

function compareAgents(a: AgentRecord, b: AgentRecord): number {
  return a.name === b.name ? BY_NAME.compare(a.id, b.id) : BY_NAME.compare(a.name, b.name);
}

/** Where `r` goes in the sorted list: a new agent is inserted, not the whole list sorted again. */
function insertionPoint(sorted: readonly AgentRecord[], r: AgentRecord): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const m = sorted[mid];
    if (m && compareAgents(m, r) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Every agent, kept current by heartbeat and status events. Ages are not stored: they are computed at
 * draw time from `lastHeartbeatAt`, corrected by the measured difference between our clock and the
 * server's (`skewMs`), so they tick without a request.
 */
export class AgentStore extends Emitter {
  private readonly byId = new Map<string, AgentRecord>();
  private sorted: AgentRecord[] | null = null;
  skewMs = 0;
  /**
   * Changes when something other than a heartbeat's fields changed: an agent came, went, or changed
   * status, version or sandbox. What is worked out over the whole fleet (versions, unsafe agents) is
   * keyed on it, so a thousand heartbeats a second do not redo it each frame.
   */
  shape = 0;

  /** Replaces everything with a fresh list; `now` is when it was received, to measure clock skew. */
  load(agents: readonly Agent[], now = Date.now()): void {
    this.byId.clear();
    const skews: number[] = [];
    for (const a of agents) {
      this.byId.set(a.id, record(a));
      skews.push(now - Date.parse(a.lastHeartbeatAt) - a.heartbeatAgeMs);
    }
    skews.sort((x, y) => x - y);
    this.skewMs = skews[Math.floor(skews.length / 2)] ?? 0;
    this.sorted = null;
    this.shape++;
    this.changed();
  }

  upsert(agent: Agent): void {
    const existing = this.byId.get(agent.id);
    // Updated in place: the sorted list holds the same objects.
    if (existing) Object.assign(existing, record(agent));
    else {
      const r = record(agent);
      this.byId.set(agent.id, r);
      if (this.sorted) this.sorted.splice(insertionPoint(this.sorted, r), 0, r);
    }
    this.shape++;
    this.changed();
  }

  /** Applies a heartbeat; false when the agent is unknown (the caller fetches it). */
  heartbeat(p: EventPayload<"agent.heartbeat">): boolean {
    const a = this.byId.get(p.agentId);
    if (!a) return false;
    a.lastHeartbeatAt = p.at;
    a.activity = p.activity;
    a.running = p.running;
    if (p.resources) a.resources = p.resources;
    if (a.status !== "online") {
      a.status = "online";
      this.shape++;
    }
    this.changed();
    return true;
  }

  status(p: EventPayload<"agent.status">): boolean {
    const a = this.byId.get(p.agentId);
    if (!a) return false;
    a.status = p.status;
    a.activity = p.activity;
    if (p.activity === "draining") a.drainRequested = true;
    this.shape++;
    this.changed();
    return true;
  }

  get(id: string): AgentRecord | undefined {
    return this.byId.get(id);
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  nameOf(id: string): string {
    return this.byId.get(id)?.name ?? id;
  }

  /** The queues some online agent takes jobs from (a draining one takes no more). */
  servedQueues(): ReadonlySet<string> {
    if (this.served?.version !== this.version) {
      const queues = new Set<string>();
      for (const a of this.byId.values())
        if (a.status === "online" && a.activity !== "draining" && !a.drainRequested)
          for (const q of a.queues) queues.add(q);
      this.served = { version: this.version, queues };
    }
    return this.served.queues;
  }
  private served: { version: number; queues: Set<string> } | null = null;

  get size(): number {
    return this.byId.size;
  }

  /** By name, then id; the array is reused until an agent is added or removed. */
  list(): readonly AgentRecord[] {
    if (!this.sorted)
      this.sorted = [...this.byId.values()].sort((a, b) =>
        a.name === b.name
          ? a.id.localeCompare(b.id)
          : a.name.localeCompare(b.name, undefined, { numeric: true }),
      );
    return this.sorted;
  }

  counts(): AgentCounts {
    const c: AgentCounts = { total: 0, online: 0, offline: 0, idle: 0, busy: 0, draining: 0, degraded: 0 };
    for (const a of this.byId.values()) {
      c.total++;
      if (a.status === "offline") {
        c.offline++;
        continue;
      }
      c.online++;
      c[a.activity]++;
    }
    return c;
  }
}

function record(a: Agent): AgentRecord {
  return { ...a, running: a.runningJobs.length };
}
