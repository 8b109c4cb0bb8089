import type { Job } from "@skiff/protocol";
import type { FleetView } from "../data/schemas.ts";
import type { AgentCounts } from "../model/agents.ts";
import type { RecentEvent } from "../model/metrics.ts";
import { fleetActual, workersCell } from "./fleet.ts";
import { formatClock, formatPercent } from "./format.ts";
import type { Color, Line, Seg } from "./style.ts";
import { fieldLines } from "./table.ts";

export interface Rate {
  succeeded: number;
  finished: number;
}

/** Succeeded among finished jobs (canceled ones are not counted either way). */
export function successRate(jobs: readonly Job[]): Rate {
  let succeeded = 0;
  let finished = 0;
  for (const j of jobs) {
    if (j.state === "succeeded") succeeded++;
    if (j.state === "succeeded" || j.state === "failed" || j.state === "timed_out") finished++;
  }
  return { succeeded, finished };
}

export interface OverviewInput {
  agents: AgentCounts;
  queued: number;
  running: number;
  rate: Rate;
  fleet: FleetView | null;
  /** Queued jobs on queues no online agent serves, by queue. */
  unserved?: ReadonlyMap<string, number>;
  /** Columns the summary has; the unserved queues' names are left to the Jobs view when short. */
  width?: number;
}

/** Where the value starts: after the field's name, padded as `fieldLines` pads it. */
const VALUE_COLUMN = 9;

function jobsCell(o: OverviewInput): Seg {
  const base = `${o.queued} queued, ${o.running} running`;
  const unserved = o.unserved ? [...o.unserved.values()].reduce((a, b) => a + b, 0) : 0;
  if (unserved === 0) return { text: base };
  const queues = [...(o.unserved?.keys() ?? [])].sort().join(", ");
  const full = `${base}; ${unserved} unserved (${queues})`;
  const fits = o.width === undefined || VALUE_COLUMN + full.length <= o.width;
  return { text: fits ? full : `${base}; ${unserved} unserved`, color: "yellow" };
}

export function overviewLines(o: OverviewInput): Line[] {
  const a = o.agents;
  // Only the counts that are not zero, so the line fits beside the gauge on an 80-column terminal.
  const kinds = (
    [
      [a.busy, "busy"],
      [a.idle, "idle"],
      [a.draining, "draining"],
      [a.degraded, "degraded"],
    ] as const
  )
    .filter(([n]) => n > 0)
    .map(([n, word]) => `${n} ${word}`);
  const agents: Line[0] = {
    text: `${a.online} online${kinds.length > 0 ? ` (${kinds.join(", ")})` : ""}${a.offline > 0 ? `, ${a.offline} offline` : ""}`,
    ...(a.offline > 0 || a.degraded > 0 ? { color: "yellow" as const } : {}),
  };
  const rateText =
    o.rate.finished === 0
      ? "no finished jobs yet"
      : `${formatPercent(o.rate.succeeded, o.rate.finished)} succeeded (${o.rate.succeeded} of ${o.rate.finished} recent)`;
  const rateColor: Color = o.rate.finished > 0 && o.rate.succeeded < o.rate.finished ? "yellow" : "green";
  return fieldLines([
    ["Agents", agents],
    ["Jobs", jobsCell(o)],
    ["Success", { text: rateText, color: rateColor }],
    ["Fleet", o.fleet ? workersCell(o.fleet.desired, fleetActual(o.fleet, a.online)) : "-"],
    [
      "Mode",
      o.fleet
        ? o.fleet.mode === "manual"
          ? `manual ${o.fleet.replicas}`
          : `auto ${o.fleet.min}-${o.fleet.max}`
        : "-",
    ],
  ]);
}

const LEVEL_COLORS: Record<RecentEvent["level"], Color | undefined> = {
  info: undefined,
  good: "green",
  warn: "yellow",
  bad: "red",
};

export function recentEventLine(e: RecentEvent): Line {
  const color = LEVEL_COLORS[e.level];
  return [
    { text: `${formatClock(new Date(e.at).toISOString())} `, color: "gray" },
    { text: e.text, ...(color ? { color } : {}) },
  ];
}
