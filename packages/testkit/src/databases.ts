import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import pg from "pg";
import { TEST_PG_ADMIN_URL } from "./services.ts";

/**
 * The template is named after the migrations it holds, so runs side by side share it safely and a
 * changed migration gets a new one.
 */
const MIGRATIONS = new URL("../../store/migrations/", import.meta.url).pathname;
const TEMPLATE_DB = `skiff_tpl_${readdirSync(MIGRATIONS)
  .sort()
  .reduce((h, f) => h.update(f).update(readFileSync(`${MIGRATIONS}${f}`)), createHash("sha256"))
  .digest("hex")
  .slice(0, 12)}`;

function urlFor(database: string): string {
  const u = new URL(TEST_PG_ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/**
 * A new database for one test file. From the migrated template unless `empty` is set (for tests
 * of migrations themselves). `drop()` removes it, disconnecting whoever is left.
 */
export async function createTestDatabase(opts: { empty?: boolean } = {}): Promise<TestDatabase> {
  const name = `skiff_t_${randomBytes(6).toString("hex")}`;
  await admin((c) => c.query(`create database ${name}${opts.empty ? "" : ` template ${TEMPLATE_DB}`}`));
  return {
    name,
    url: urlFor(name),
    drop: () => admin((c) => c.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

/** Creates the migrated template unless it exists; an advisory lock keeps concurrent runs apart. */
export async function ensureTemplate(migrateUrl: (url: string) => Promise<void>): Promise<void> {
  await admin(async (c) => {
    await c.query("select pg_advisory_lock(7270099)");
    try {
      const res = await c.query("select 1 from pg_database where datname = $1", [TEMPLATE_DB]);
      if (res.rows.length > 0) return;
      await c.query(`create database ${TEMPLATE_DB}_building`);
      try {
        await migrateUrl(urlFor(`${TEMPLATE_DB}_building`));
        await c.query(`alter database ${TEMPLATE_DB}_building rename to ${TEMPLATE_DB}`);
      } catch (err) {
        await c.query(`drop database if exists ${TEMPLATE_DB}_building with (force)`);
        throw err;
      }
    } finally {
      await c.query("select pg_advisory_unlock(7270099)");
    }
  });
}
