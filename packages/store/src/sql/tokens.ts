import type { Role, TokenInfo } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { toToken } from "../rows.ts";

export async function insertToken(
  q: Queryable,
  input: { id: string; name: string; role: Role; hash: string; createdBy: string },
): Promise<TokenInfo> {
  const res = await q.query(
    "insert into tokens (id, name, role, hash, created_by) values ($1, $2, $3, $4, $5) returning *",
    [input.id, input.name, input.role, input.hash, input.createdBy],
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
