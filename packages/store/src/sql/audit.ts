import { createHash, createHmac, timingSafeEqual } from "node:crypto";
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

/** The seal of a row: an HMAC of its hash under the audit key, which the database never sees. */
export function sealOf(key: Buffer, hash: string): string {
  return createHmac("sha256", key).update(`skiff-audit-row:${hash}`).digest("hex");
}

/** A signed statement that the chain had `hash` at `seq`: kept outside the database. */
export interface AuditCheckpoint {
  seq: number;
  hash: string;
  at: string;
  sig: string;
}

export function signCheckpoint(
  key: Buffer,
  head: { seq: number; hash: string; at: string },
): AuditCheckpoint {
  const sig = createHmac("sha256", key)
    .update(`skiff-audit-checkpoint:${head.seq}:${head.hash}:${head.at}`)
    .digest("hex");
  return { seq: head.seq, hash: head.hash, at: head.at, sig };
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The hashed fields of a stored row, as `hashEntry` takes them. */
export function hashableOf(raw: Record<string, unknown>): Hashable {
  return {
    seq: Number(raw.seq),
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
}

/**
 * The head to checkpoint: the last row, only when its hash matches its content and link and `key`
 * sealed it. A checkpoint must never vouch for a row the API did not write (one inserted or
 * rewritten by a database owner), so a head that fails is an error naming the row, not a checkpoint.
 */
export async function sealedHead(q: Queryable, key: Buffer): Promise<{ seq: number; hash: string }> {
  const res = await q.query<Record<string, unknown>>("select * from audit_log order by seq desc limit 1");
  const raw = res.rows[0];
  if (!raw) return { seq: 0, hash: GENESIS_HASH };
  const seq = Number(raw.seq);
  const hash = String(raw.hash);
  if (hashEntry(String(raw.prev_hash), hashableOf(raw)) !== hash)
    throw new AuditHeadError(seq, "was altered after it was written");
  if (typeof raw.seal !== "string" || !sameHex(sealOf(key, hash), raw.seal))
    throw new AuditHeadError(seq, "is not sealed by this audit key (forged, or written without the key)");
  return { seq, hash };
}

export class AuditHeadError extends Error {
  constructor(
    readonly seq: number,
    what: string,
  ) {
    super(`audit row ${seq} ${what}: no checkpoint signed for it; run \`skiff audit verify\``);
    this.name = "AuditHeadError";
  }
}

/** Appends one entry; call it inside the transaction of the change it records. */
export async function appendAudit(
  q: Queryable,
  draft: AuditDraft,
  key: Buffer | null = null,
): Promise<AuditEntry> {
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
  const entry: AuditEntry = { ...row, prevHash, hash };
  // The row and its `audit.appended` event in one statement: no entry without its event.
  await q.query(
    `with appended as (
       insert into audit_log (seq, at, actor, role, action, target, outcome, request_id, source_ip, details, prev_hash, hash, seal)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       returning seq
     )
     insert into events (name, payload) select 'audit.appended', $14::jsonb from appended`,
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
      key ? sealOf(key, hash) : null,
      JSON.stringify(entry),
    ],
  );
  return entry;
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
 * Recomputes the chain from the first row, in pages, and names the first row whose seq, link, hash
 * or seal does not match what it should be. With the audit key, every row must carry a valid seal,
 * except a leading run of rows written before sealing was on (counted in `unsealed`). Each
 * checkpoint given (signed with the key, kept outside the database) must still match the row at its
 * seq: a missing row there means the log was cut short, another hash that it was rewritten.
 */
export async function verifyAudit(
  q: Queryable,
  opts: { pageSize?: number; key?: Buffer | null; checkpoints?: AuditCheckpoint[] } = {},
): Promise<AuditVerifyResult> {
  const pageSize = opts.pageSize ?? 1000;
  const key = opts.key ?? null;
  const checkpoints = [...(opts.checkpoints ?? [])].sort((a, b) => a.seq - b.seq);
  const broken = (checked: number, seq: number, reason: string): AuditVerifyResult => ({
    ok: false,
    checked,
    firstBrokenSeq: seq,
    reason,
    sealed: key !== null,
    unsealed,
    checkpoints: checkpoints.length,
  });
  let unsealed = 0;
  for (const cp of checkpoints) {
    if (!key)
      return broken(0, cp.seq, "checkpoints can only be checked with the audit key (SKIFF_AUDIT_KEY)");
    if (!sameHex(signCheckpoint(key, cp).sig, String(cp.sig)))
      return broken(0, cp.seq, `the checkpoint at seq ${cp.seq} is not signed with this audit key`);
  }
  // Several checkpoints may name one seq (after rows were cut and the seq reused): each is checked.
  const wanted = new Map<number, AuditCheckpoint[]>();
  for (const cp of checkpoints) wanted.set(cp.seq, [...(wanted.get(cp.seq) ?? []), cp]);
  let prevHash = GENESIS_HASH;
  let expectSeq = 1;
  let checked = 0;
  let sealedSeen = false;
  for (;;) {
    const res = await q.query<Record<string, unknown>>(
      "select * from audit_log where seq >= $1 order by seq limit $2",
      [expectSeq, pageSize],
    );
    for (const raw of res.rows) {
      const seq = Number(raw.seq);
      if (seq !== expectSeq) return broken(checked, expectSeq, `row ${expectSeq} is missing`);
      const row = hashableOf(raw);
      if (raw.prev_hash !== prevHash)
        return broken(checked, seq, `row ${seq} does not link to row ${seq - 1}`);
      const hash = hashEntry(prevHash, row);
      if (raw.hash !== hash) return broken(checked, seq, `row ${seq} was altered after it was written`);
      if (key) {
        const seal = raw.seal;
        if (typeof seal !== "string" || seal === "") {
          if (sealedSeen)
            return broken(
              checked,
              seq,
              `row ${seq} has no seal: it was written without the audit key, or forged`,
            );
          unsealed += 1;
        } else {
          if (!sameHex(sealOf(key, hash), seal))
            return broken(
              checked,
              seq,
              `row ${seq} has a seal this audit key did not make: forged or rewritten`,
            );
          sealedSeen = true;
        }
      }
      const cp = (wanted.get(seq) ?? []).find((c) => c.hash !== hash);
      if (cp)
        return broken(
          checked,
          seq,
          `row ${seq} differs from the checkpoint of ${cp.at}: history was rewritten`,
        );
      prevHash = hash;
      expectSeq = seq + 1;
      checked += 1;
    }
    if (res.rows.length < pageSize) break;
  }
  const last = checkpoints.at(-1);
  if (last && last.seq >= expectSeq)
    return broken(
      checked,
      expectSeq,
      `the log ends at row ${expectSeq - 1} but the checkpoint of ${last.at} saw row ${last.seq}: rows were deleted`,
    );
  return { ok: true, checked, sealed: key !== null, unsealed, checkpoints: checkpoints.length };
}
