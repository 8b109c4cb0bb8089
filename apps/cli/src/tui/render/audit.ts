import type { AuditEntry, AuditOutcome, AuditVerifyResult } from "@skiff/protocol";
import { formatClock, formatDateTime } from "./format.ts";
import type { Line, Seg } from "./style.ts";
import type { Column } from "./table.ts";

export function outcomeCell(outcome: AuditOutcome): Seg {
  if (outcome === "ok") return { text: "ok", color: "green" };
  return { text: outcome, color: outcome === "denied" ? "yellow" : "red" };
}

/** `key=value` pairs of an entry's details, nested values as compact JSON. */
export function detailsText(details: Record<string, unknown>): string {
  return Object.entries(details)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
}

export function auditColumns(): Column<AuditEntry>[] {
  return [
    { title: "SEQ", width: 6, align: "right", cell: (e) => String(e.seq), sort: (e) => e.seq },
    { title: "AT", width: 19, cell: (e) => formatDateTime(e.at), sort: (e) => e.seq },
    { title: "ACTOR", width: 12, cell: (e) => e.actor, sort: (e) => e.actor },
    { title: "ROLE", width: 8, cell: (e) => e.role, sort: (e) => e.role },
    { title: "ACTION", width: 16, cell: (e) => e.action, sort: (e) => e.action },
    { title: "TARGET", width: 14, flex: 1, max: 30, cell: (e) => e.target, sort: (e) => e.target },
    { title: "OUTCOME", width: 7, cell: (e) => outcomeCell(e.outcome), sort: (e) => e.outcome },
    {
      title: "DETAILS",
      width: 10,
      flex: 2,
      cell: (e) => detailsText(e.details),
      sort: (e) => detailsText(e.details),
    },
  ];
}

/** One entry in full, for the detail pane. */
export function auditDetail(e: AuditEntry): Line[] {
  const lines: Line[] = [
    [
      { text: `#${e.seq} `, bold: true },
      { text: `${e.action} on ${e.target} by ${e.actor} (${e.role}) ` },
      outcomeCell(e.outcome),
    ],
    [{ text: `at ${formatDateTime(e.at)}  request ${e.requestId ?? "-"}  from ${e.sourceIp ?? "-"}` }],
    [{ text: `hash ${e.hash}  prev ${e.prevHash}`, color: "gray" }],
  ];
  for (const [k, v] of Object.entries(e.details))
    lines.push([{ text: `  ${k}: `, bold: true }, { text: typeof v === "string" ? v : JSON.stringify(v) }]);
  return lines;
}

/** The result of a chain check, as a flash message. */
export function verifyMessage(r: AuditVerifyResult): { text: string; level: "info" | "error" } {
  if (r.ok) return { text: `audit chain intact: ${r.checked} entries checked`, level: "info" };
  const where = r.firstBrokenSeq === undefined ? "" : ` at #${r.firstBrokenSeq}`;
  return {
    text: `audit chain BROKEN${where}${r.reason ? `: ${r.reason}` : ""} (${r.checked} checked)`,
    level: "error",
  };
}

/**
 * The Audit title's badge: what the last check found and how far it reached. Entries written since
 * are not vouched for: the badge says how many, until the view checks again.
 */
export function verifyBadge(v: { result: AuditVerifyResult; at: number; upTo: number }, newest: number): Seg {
  if (!v.result.ok) {
    const where = v.result.firstBrokenSeq === undefined ? "" : ` at #${v.result.firstBrokenSeq}`;
    return { text: `  ✗ chain BROKEN${where}`, color: "red", bold: true };
  }
  const at = formatClock(new Date(v.at).toISOString());
  const unchecked = newest - v.upTo;
  if (unchecked > 0)
    return {
      text: `  ✓ intact to #${v.upTo} (${at}); ${unchecked} newer ${unchecked === 1 ? "entry" : "entries"} not yet checked`,
      color: "yellow",
    };
  return { text: `  ✓ chain intact to #${v.upTo} (checked ${at})`, color: "green" };
}
