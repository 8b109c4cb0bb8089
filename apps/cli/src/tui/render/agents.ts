import type { AgentRecord } from "../model/types.ts";
import { formatMb } from "./format.ts";
import { type HeartbeatPolicy, heartbeatCell } from "./heartbeat.ts";
import type { Seg } from "./style.ts";
import type { Column } from "./table.ts";

/** The status cell: offline, or the activity of an online agent, with a pending drain noted. */
export function agentStatusCell(a: AgentRecord): Seg {
  if (a.status === "offline") return { text: "offline", color: "red" };
  const drain = a.drainRequested && a.activity !== "draining" ? " (drain)" : "";
  switch (a.activity) {
    case "idle":
      return { text: `idle${drain}`, color: drain ? "yellow" : "green" };
    case "busy":
      return { text: `busy${drain}`, color: drain ? "yellow" : "cyan" };
    case "draining":
      return { text: "draining", color: "yellow" };
    case "degraded":
      return { text: "degraded", color: "red" };
  }
}

function cpuCell(a: AgentRecord): string {
  const r = a.resources;
  if (r.cpuPercent !== undefined) return `${Math.round(r.cpuPercent)}%`;
  if (r.load1 !== undefined) return `load ${r.load1.toFixed(1)}`;
  return "-";
}

function memCell(a: AgentRecord): string {
  const { memoryUsedMb: used, memoryTotalMb: total } = a.resources;
  if (used === undefined) return "-";
  return total === undefined ? formatMb(used) : `${formatMb(used)}/${formatMb(total)}`;
}

/** Sandboxless agents are shown loudly, as docs/design.md §6 asks. */
export function sandboxCell(a: AgentRecord): Seg {
  if (a.unsafe || a.sandbox === "none") return { text: "UNSAFE", color: "red", bold: true };
  return { text: a.sandbox };
}

export function labelsText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return parts.length === 0 ? "-" : parts.join(",");
}

/** Milliseconds since the agent's last heartbeat by the server's clock (`skewMs`: ours minus its). */
export function heartbeatAge(a: AgentRecord, now: number, skewMs: number): number {
  return Math.max(0, now - skewMs - Date.parse(a.lastHeartbeatAt));
}

/** The versions of the online agents, the most common first (ties by version, for a stable order). */
export function versionCounts(agents: readonly AgentRecord[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const a of agents) if (a.status !== "offline") counts.set(a.version, (counts.get(a.version) ?? 0) + 1);
  return [...counts].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
}

/** The version, marked when it is not the fleet's most common one (a worker left behind, or ahead). */
export function versionCell(a: AgentRecord, common: string | null): Seg {
  if (common === null || a.version === common || a.status === "offline") return { text: a.version };
  return { text: `≠${a.version}`, color: "yellow", bold: true };
}

export function agentColumns(
  now: number,
  skewMs: number,
  policy: HeartbeatPolicy,
  commonVersion: string | null = null,
): Column<AgentRecord>[] {
  return [
    { title: "ID", width: 26, cell: (a) => a.id, sort: (a) => a.id },
    {
      title: "NAME",
      width: 16,
      flex: 2,
      max: 40,
      cell: (a) => (a.unsafe ? `⚠ ${a.name}` : a.name),
      sort: (a) => a.name,
    },
    {
      title: "STATUS",
      width: 13,
      cell: agentStatusCell,
      sort: (a) => (a.status === "offline" ? "~offline" : a.activity),
    },
    {
      title: "HEARTBEAT",
      width: 13,
      cell: (a) => heartbeatCell(heartbeatAge(a, now, skewMs), a.status, policy),
      // The later the last beat, the smaller its age: no need to sort again as the clock moves.
      sort: (a) => -Date.parse(a.lastHeartbeatAt),
    },
    {
      title: "JOBS",
      width: 5,
      align: "right",
      cell: (a) => `${a.running}/${a.slots}`,
      sort: (a) => a.running,
    },
    {
      title: "CPU",
      width: 8,
      align: "right",
      cell: cpuCell,
      sort: (a) => a.resources.cpuPercent ?? a.resources.load1 ?? -1,
    },
    {
      title: "MEMORY",
      width: 16,
      align: "right",
      cell: memCell,
      sort: (a) => a.resources.memoryUsedMb ?? -1,
    },
    { title: "VERSION", width: 8, cell: (a) => versionCell(a, commonVersion), sort: (a) => a.version },
    { title: "SANDBOX", width: 7, cell: sandboxCell, sort: (a) => (a.unsafe ? "" : a.sandbox) },
    {
      title: "LABELS",
      width: 10,
      flex: 1,
      cell: (a) => labelsText(a.labels),
      sort: (a) => labelsText(a.labels),
    },
  ];
}
