import type { Role, TokenInfo, TokenScope } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { toToken } from "../rows.ts";

export async function insertToken(
  q: Queryable,
  input: { id: string; name: string; role: Role; hash: string; createdBy: string; scope?: TokenScope | null },
): Promise<TokenInfo> {
  const res = await q.query(
    "insert into tokens (id, name, role, hash, created_by, scope) values ($1, $2, $3, $4, $5, $6) returning *",
    [
      input.id,
      input.name,
      input.role,
      input.hash,
      input.createdBy,
      input.scope ? JSON.stringify(input.scope) : null,
    ],
  );
  const row = res.rows[0];
  if (!row) throw new Error("insert into tokens returned no row");
  return toToken(row);
}

/** The live (not revoked) token with this SHA-256 hash, if any. */
export async function findTokenByHash(q: Queryable, hash: string): Promise<TokenInfo | null> {
  const res = await q.query("select * from tokens where hash = $1 and revoked_at is null", [hash]);
  const row = res.rows[0];
  return row ? toToken(row) : null;
}

/** A live token, or an online agent's own credential (then `agentId` names the agent it acts for). */
export interface Credential {
  /** The token itself, or for an agent credential the token that registered the agent. */
  token: TokenInfo;
  agentId: string | null;
}

/**
 * Whatever this SHA-256 hash unlocks: a live token, or the credential of an online agent whose
 * registering token is still live. One statement, so an agent call costs one lookup either way.
 */
export async function findCredential(q: Queryable, hash: string): Promise<Credential | null> {
  const res = await q.query(
    `select t.*, null::text as agent_id from tokens t where t.hash = $1 and t.revoked_at is null
     union all
     select t.*, a.id from agents a join tokens t on t.id = a.token_id
      where a.credential_hash = $1 and a.status = 'online' and t.revoked_at is null
     limit 1`,
    [hash],
  );
  const row = res.rows[0];
  if (!row) return null;
  return { token: toToken(row), agentId: typeof row.agent_id === "string" ? row.agent_id : null };
}

export async function touchToken(q: Queryable, id: string): Promise<void> {
  await q.query(
    "update tokens set last_used_at = now() where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute')",
    [id],
  );
}

export async function listTokens(q: Queryable): Promise<TokenInfo[]> {
  const res = await q.query("select * from tokens order by created_at, id");
  return res.rows.map(toToken);
}

export async function revokeToken(q: Queryable, id: string): Promise<TokenInfo | null> {
  const res = await q.query(
    "update tokens set revoked_at = coalesce(revoked_at, now()) where id = $1 returning *",
    [id],
  );
  const row = res.rows[0];
  return row ? toToken(row) : null;
}

export async function hasLiveAdmin(q: Queryable): Promise<boolean> {
  const res = await q.query("select 1 from tokens where role = 'admin' and revoked_at is null limit 1");
  return res.rows.length > 0;
}
