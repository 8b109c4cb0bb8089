import type { EventName, EventPayload } from "@skiff/protocol";
import type { AgentStore } from "./agents.ts";
import type { RecentEvent } from "./metrics.ts";

type Level = RecentEvent["level"];

function text(name: EventName, p: unknown, agents: AgentStore): [string, Level] | null {
  switch (name) {
    case "agent.heartbeat":
      return null;
    case "agent.registered": {
      const e = p as EventPayload<"agent.registered">;
      return [`agent ${e.name} registered (${e.sandbox})`, "good"];
    }
    case "agent.status": {
      const e = p as EventPayload<"agent.status">;
      const level: Level = e.status === "offline" ? "bad" : e.activity === "draining" ? "warn" : "info";
      const what = e.status === "offline" ? "offline" : e.activity;
      return [`agent ${agents.nameOf(e.agentId)} ${what}${e.reason ? `: ${e.reason}` : ""}`, level];
    }
    case "job.created": {
      const e = p as EventPayload<"job.created">;
      return [`job ${e.name} (${e.jobId}) submitted to ${e.queue}`, "info"];
    }
    case "job.state": {
      const e = p as EventPayload<"job.state">;
      const level: Level =
        e.state === "succeeded" ? "good" : ["failed", "timed_out"].includes(e.state) ? "bad" : "info";
      const on = e.agentId && e.state !== "queued" ? ` on ${agents.nameOf(e.agentId)}` : "";
      return [`job ${e.jobId} ${e.state.replace("_", " ")}${on}${e.reason ? `: ${e.reason}` : ""}`, level];
    }
    case "fleet.changed": {
      const e = p as EventPayload<"fleet.changed">;
      // A controller's decision carries the size it chose (its settings are unchanged).
      if (e.desired !== undefined)
        return [
          `controller: ${e.desired} workers wanted, ${e.actual ?? "?"} running${e.reason ? ` (${e.reason})` : ""}`,
          "info",
        ];
      const size =
        e.mode === "auto" ? `auto ${e.min ?? "?"}-${e.max ?? "?"}` : `${e.replicas ?? "?"} replicas`;
      return [`fleet set to ${size}${e.reason ? ` (${e.reason})` : ""}`, "warn"];
    }
    case "audit.appended": {
      const e = p as EventPayload<"audit.appended">;
      return [
        `audit #${e.seq} ${e.action} ${e.target} by ${e.actor}: ${e.outcome}`,
        e.outcome === "ok" ? "info" : "warn",
      ];
    }
  }
}

/** A line for the Overview's event feed, or null for events too frequent to be news (heartbeats). */
export function describeEvent(
  name: EventName,
  payload: unknown,
  agents: AgentStore,
  at = Date.now(),
): RecentEvent | null {
  const t = text(name, payload, agents);
  return t ? { at, name, text: t[0], level: t[1] } : null;
}
