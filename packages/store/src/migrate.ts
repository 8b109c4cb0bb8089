import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "./db.ts";

const MIGRATIONS_DIR = new URL("../migrations/", import.meta.url).pathname;
// Arbitrary but fixed: every Skiff process migrating one database takes this session lock first.
const MIGRATION_LOCK = 7_270_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number.parseInt(file.slice(0, 4), 10),
      name: file.slice(5, -4),
      sql: readFileSync(join(dir, file), "utf8"),
    }));
}

export interface MigrateResult {
  applied: string[];
  current: number;
}

/** Whether every migration is recorded as applied (false when the table itself is missing). */
async function upToDate(
  s: { query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[] }> },
  migrations: Migration[],
): Promise<boolean> {
  const exists = await s.query<{ found: string | null }>(
    "select to_regclass('skiff_migrations')::text as found",
  );
  if (!exists.rows[0]?.found) return false;
  const done = await s.query<{ version: number }>("select version from skiff_migrations");
  const have = new Set(done.rows.map((r) => Number(r.version)));
  return migrations.every((m) => have.has(m.version));
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock so that
 * processes starting together apply each migration exactly once. Running it again is a no-op.
 */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<MigrateResult> {
  return db.session(async (s) => {
    const current = Math.max(0, ...migrations.map((m) => m.version));
    // Up to date already: nothing to create. This is also what lets the API and the controller run
    // as a role without CREATE on the schema (docs/operations.md, "an insert-only role").
    if (await upToDate(s, migrations)) return { applied: [], current };
    await s.query("select pg_advisory_lock($1)", [MIGRATION_LOCK]);
    try {
      await s.query(`create table if not exists skiff_migrations (
        version integer primary key, name text not null, applied_at timestamptz not null default now())`);
      const done = await s.query<{ version: number }>("select version from skiff_migrations");
      const have = new Set(done.rows.map((r) => Number(r.version)));
      const applied: string[] = [];
      for (const m of migrations) {
        if (have.has(m.version)) continue;
        await s.query("begin");
        try {
          await s.exec(m.sql);
          await s.query("insert into skiff_migrations (version, name) values ($1, $2)", [m.version, m.name]);
          await s.query("commit");
        } catch (err) {
          await s.query("rollback");
          throw new Error(`migration ${m.version}_${m.name} failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
        applied.push(`${String(m.version).padStart(4, "0")}_${m.name}`);
      }
      return { applied, current };
    } finally {
      await s.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK]);
    }
  });
}
