import pg from "pg";
import type { Db, Queryable, QueryResult } from "./db.ts";

// int8 (counts, sequence numbers) as JS numbers: every int8 Skiff stores fits in 2^53.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

export interface PgOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
}

function wrap(client: pg.PoolClient): Queryable {
  return {
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const res = await client.query(sql, params as unknown[]);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

/** A pool against a real PostgreSQL server. */
export function createPgDb(options: PgOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? "skiff",
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});

  return {
    kind: "pg",
    async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
      const res = await pool.query(sql, params as unknown[]);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await pool.query(sql);
    },
    async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // A checked-out client reports a lost connection as an 'error' event; the failing query
      // already rejects, so the event must not crash the process.
      const onError = () => {};
      client.on("error", onError);
      let broken = false;
      try {
        await client.query("begin");
        const result = await fn(wrap(client));
        await client.query("commit");
        return result;
      } catch (err) {
        try {
          await client.query("rollback");
        } catch {
          broken = true;
        }
        throw err;
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    async session<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken = false;
      const onError = () => {
        broken = true;
      };
      client.on("error", onError);
      try {
        return await fn(wrap(client));
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    },
    async close() {
      await pool.end();
    },
  };
}
