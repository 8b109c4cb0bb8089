import { mkdirSync } from "node:fs";
import { PGlite } from "@electric-sql/pglite";
import type { Db, Queryable, QueryResult } from "./db.ts";

export interface PgliteOptions {
  /** A directory for the database files; omit for an in-memory database. */
  dataDir?: string;
}

function wrap(run: PGlite | Parameters<Parameters<PGlite["transaction"]>[0]>[0]): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const res = await run.query<R>(sql, params as unknown[]);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await run.exec(sql);
    },
  };
}

/**
 * Embedded PostgreSQL (PGlite): one connection in this process. Statements and transactions are
 * serialised by PGlite itself, so `for update skip locked` and advisory locks keep their meaning.
 */
export async function createPgliteDb(options: PgliteOptions = {}): Promise<Db> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const db = options.dataDir ? new PGlite(options.dataDir) : new PGlite();
  await db.waitReady;
  const direct = wrap(db);
  return {
    kind: "pglite",
    query: direct.query,
    exec: direct.exec,
    tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      return db.transaction((tx) => fn(wrap(tx)));
    },
    session<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      return fn(direct);
    },
    async listen(channel: string, fn: () => void) {
      const stop = await db.listen(channel, () => fn());
      return async () => {
        await stop().catch(() => {});
      };
    },
    async close() {
      await db.close();
    },
  };
}
