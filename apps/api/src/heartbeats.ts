import type { EventPayload } from "@skiff/protocol";

export type HeartbeatSample = EventPayload<"agent.heartbeat">;

/**
 * The last few heartbeats of each agent, kept in memory from the bus (so every replica sees every
 * agent's) for `GET /v1/agents/:id`. Bounded per agent and in agents.
 */
export class HeartbeatLog {
  private readonly byAgent = new Map<string, HeartbeatSample[]>();

  constructor(
    private readonly perAgent = 20,
    private readonly maxAgents = 20_000,
  ) {}

  add(sample: HeartbeatSample): void {
    const list = this.byAgent.get(sample.agentId) ?? [];
    list.push(sample);
    if (list.length > this.perAgent) list.shift();
    this.byAgent.delete(sample.agentId);
    this.byAgent.set(sample.agentId, list);
    if (this.byAgent.size > this.maxAgents) {
      const oldest = this.byAgent.keys().next();
      if (!oldest.done) this.byAgent.delete(oldest.value);
    }
  }

  recent(agentId: string): HeartbeatSample[] {
    return [...(this.byAgent.get(agentId) ?? [])].reverse();
  }
}
