import type { FleetDecision, FleetView } from "../data/schemas.ts";
import { formatAgo, formatClock } from "./format.ts";
import type { Line, Seg } from "./style.ts";
import { type Column, fieldLines } from "./table.ts";

export function modeText(f: FleetView): string {
  return f.mode === "manual"
    ? `manual, ${f.replicas} replica${f.replicas === 1 ? "" : "s"}`
    : `auto, min ${f.min} max ${f.max} warm ${f.warm}`;
}

/**
 * The fleet's workers now: what the controller counts as its own (an API that reports `online`), or
 * else every online agent the console sees (an older API, which had nothing better).
 */
export function fleetActual(f: FleetView, onlineAgents: number): number {
  return f.online === undefined ? onlineAgents : f.actual;
}

/** Desired against actual, marked when they differ (the controller is still converging). */
export function workersCell(desired: number, actual: number): Seg {
  const text = `desired ${desired}  actual ${actual}`;
  if (desired === actual) return { text: `${text}  ✓ converged`, color: "green" };
  return { text: `${text}  ${actual < desired ? "↑ scaling up" : "↓ scaling down"}`, color: "yellow" };
}

function onlineText(f: FleetView, onlineAgents: number): string {
  const outside = f.online === undefined ? 0 : onlineAgents - f.actual;
  return outside > 0
    ? `${onlineAgents} (${outside} not the fleet's: started beside it)`
    : String(onlineAgents);
}

export function fleetSummary(f: FleetView, onlineAgents: number, now: number): Line[] {
  const leader = f.leader
    ? `${f.leader.holder} (epoch ${f.leader.epoch}, since ${formatClock(f.leader.since)})`
    : { text: "none: no controller is running", color: "red" as const };
  return fieldLines([
    ["Mode", modeText(f)],
    ["Workers", workersCell(f.desired, fleetActual(f, onlineAgents))],
    ["Online agents", onlineText(f, onlineAgents)],
    ["Scaler", f.scaler ?? "-"],
    ["Leader", leader],
    ["Updated", `by ${f.updatedBy} ${formatAgo(f.updatedAt, now)}`],
  ]);
}

export function decisionColumns(): Column<FleetDecision>[] {
  return [
    { title: "AT", width: 8, cell: (d) => formatClock(d.at) },
    { title: "EPOCH", width: 5, align: "right", cell: (d) => String(d.leaderEpoch) },
    { title: "DESIRED", width: 7, align: "right", cell: (d) => String(d.desired) },
    { title: "ACTUAL", width: 6, align: "right", cell: (d) => String(d.actual) },
    { title: "REASON", width: 20, flex: 1, cell: (d) => d.reason },
  ];
}
