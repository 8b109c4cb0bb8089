import { createHash } from "node:crypto";
import { type AuditEntry, type AuditOutcome, type AuditVerifyResult, repairText } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { iso, toAudit } from "../rows.ts";

export const GENESIS_HASH = "0".repeat(64);
// Serialises appends so that every row's prevHash is the hash of the row before it.
const AUDIT_LOCK = 7_270_002;

/** What a caller says about an action; seq, time and hashes are added when it is appended. */
export interface AuditDraft {
  actor: string;
  role: string;
  action: string;
  target: string;
  outcome: AuditOutcome;
  requestId?: string | null;
  sourceIp?: string | null;
  details?: Record<string, unknown>;
}

/**
 * JSON with object keys sorted at every level, and every string (key or value) spelled as
 * PostgreSQL stores it, so a row hashes the same however it was read back. The database keeps any
 * text but NUL as given; a lone UTF-16 surrogate has no UTF-8 form and arrives as U+FFFD, so here
 * it is U+FFFD too (as is NUL, which `appendAudit` never lets reach the database).
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(repairText(value));
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]): [string, unknown] => [repairText(k), v])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** A JSON value with every string and key as the database will keep it (see `canonicalJson`). */
function storable(value: unknown): unknown {
  if (typeof value === "string") return repairText(value);
  if (Array.isArray(value)) return value.map(storable);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [repairText(k), storable(v)]));
}

type Hashable = Omit<AuditEntry, "prevHash" | "hash">;

export function hashEntry(prevHash: string, row: Hashable): string {
  const body = canonicalJson({
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    role: row.role,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    requestId: row.requestId,
    sourceIp: row.sourceIp,
    details: row.details,
  });
  return createHash("sha256").update(prevHash).update(body).digest("hex");
}

/** Appends one entry; call it inside the transaction of the change it records. */
export async function appendAudit(q: Queryable, draft: AuditDraft): Promise<AuditEntry> {
  await q.query("select pg_advisory_xact_lock($1)", [AUDIT_LOCK]);
  const last = await q.query<{ seq: number; hash: string }>(
    "select seq, hash from audit_log order by seq desc limit 1",
  );
  const prev = last.rows[0];
  const row: Hashable = {
    seq: prev ? Number(prev.seq) + 1 : 1,
    at: new Date().toISOString(),
    // What is hashed, stored and returned is the same text: what the database keeps.
    actor: repairText(draft.actor),
    role: repairText(draft.role),
    action: repairText(draft.action),
    target: repairText(draft.target),
    outcome: draft.outcome,
    requestId: draft.requestId == null ? null : repairText(draft.requestId),
    sourceIp: draft.sourceIp == null ? null : repairText(draft.sourceIp),
    details: storable(JSON.parse(JSON.stringify(draft.details ?? {}))) as Record<string, unknown>,
  };
  const prevHash = prev ? prev.hash : GENESIS_HASH;
  const hash = hashEntry(prevHash, row);
  await q.query(
    `insert into audit_log (seq, at, actor, role, action, target, outcome, request_id, source_ip, details, prev_hash, hash)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      row.seq,
      row.at,
      row.actor,
      row.role,
      row.action,
      row.target,
      row.outcome,
      row.requestId,
      row.sourceIp,
      JSON.stringify(row.details),
      prevHash,
      hash,
    ],
  );
  return { ...row, prevHash, hash };
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  until?: string;
  /** Entries with seq below this (the cursor of the previous page). */
  beforeSeq?: number;
  limit: number;
}

export async function listAudit(q: Queryable, f: AuditFilter): Promise<AuditEntry[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown) => {
    params.push(value);
    where.push(clause.replace("?", `$${params.length}`));
  };
  if (f.actor) add("actor = ?", f.actor);
  if (f.action) add("action = ?", f.action);
  if (f.target) add("target = ?", f.target);
  if (f.since) add("at >= ?", f.since);
  if (f.until) add("at < ?", f.until);
  if (f.beforeSeq !== undefined) add("seq < ?", f.beforeSeq);
  params.push(f.limit);
  const sql = `select * from audit_log ${where.length ? `where ${where.join(" and ")}` : ""}
    order by seq desc limit $${params.length}`;
  const res = await q.query(sql, params);
  return res.rows.map(toAudit);
}

/**
 * Recomputes the chain from the first row, in pages, and names the first row whose seq, link or
 * hash does not match what it should be.
 */
export async function verifyAudit(q: Queryable, pageSize = 1000): Promise<AuditVerifyResult> {
  let prevHash = GENESIS_HASH;
  let expectSeq = 1;
  let checked = 0;
  for (;;) {
    const res = await q.query<Record<string, unknown>>(
      "select * from audit_log where seq >= $1 order by seq limit $2",
      [expectSeq, pageSize],
    );
    for (const raw of res.rows) {
      const seq = Number(raw.seq);
      if (seq !== expectSeq) {
        return { ok: false, checked, firstBrokenSeq: expectSeq, reason: `row ${expectSeq} is missing` };
      }
      const row: Hashable = {
        seq,
        at: iso(raw.at),
        actor: String(raw.actor),
        role: String(raw.role),
        action: String(raw.action),
        target: String(raw.target),
        outcome: raw.outcome as AuditOutcome,
        requestId: (raw.request_id as string | null) ?? null,
        sourceIp: (raw.source_ip as string | null) ?? null,
        details: (raw.details ?? {}) as Record<string, unknown>,
      };
      if (raw.prev_hash !== prevHash) {
        return {
          ok: false,
          checked,
          firstBrokenSeq: seq,
          reason: `row ${seq} does not link to row ${seq - 1}`,
        };
      }
      const hash = hashEntry(prevHash, row);
      if (raw.hash !== hash) {
        return {
          ok: false,
          checked,
          firstBrokenSeq: seq,
          reason: `row ${seq} was altered after it was written`,
        };
      }
      prevHash = hash;
      expectSeq = seq + 1;
      checked += 1;
    }
    if (res.rows.length < pageSize) return { ok: true, checked };
  }
}
