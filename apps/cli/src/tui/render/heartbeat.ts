import type { AgentStatus } from "@skiff/protocol";
import { formatAge } from "./format.ts";
import type { Color, Seg } from "./style.ts";

/** When an agent counts as late or gone: the API's heartbeat interval and offline threshold. */
export interface HeartbeatPolicy {
  intervalMs: number;
  offlineAfterMs: number;
}

export const DEFAULT_HEARTBEAT_POLICY: HeartbeatPolicy = { intervalMs: 10_000, offlineAfterMs: 30_000 };

export type Freshness = "fresh" | "late" | "offline";

const COLORS: Record<Freshness, Color> = { fresh: "green", late: "yellow", offline: "red" };

/**
 * Fresh while the last beat is at most one and a half intervals old (a beat may come a little late
 * without meaning anything), late after that, offline once the API would declare it so or already
 * has.
 */
export function freshness(ageMs: number, status: AgentStatus, policy: HeartbeatPolicy): Freshness {
  if (status === "offline" || ageMs >= policy.offlineAfterMs) return "offline";
  if (ageMs > policy.intervalMs * 1.5) return "late";
  return "fresh";
}

/** The heartbeat cell: the age, and for late or offline agents the word too (for NO_COLOR). */
export function heartbeatCell(ageMs: number, status: AgentStatus, policy: HeartbeatPolicy): Seg {
  const level = freshness(ageMs, status, policy);
  const age = formatAge(ageMs);
  const text = level === "fresh" ? age : `${age} ${level}`;
  return { text, color: COLORS[level] };
}
