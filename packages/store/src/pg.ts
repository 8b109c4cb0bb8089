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
    listen(channel: string, fn: () => void) {
      return listenPg(options, channel, fn);
    },
    async close() {
      await pool.end();
    },
  };
}

/**
 * LISTEN on a connection of its own (a pooled one would be handed back and lose it). When the
 * connection drops it reconnects with a growing pause, and calls `fn` once it is back: what was
 * notified meanwhile is lost, so the listener catches up by reading.
 */
async function listenPg(options: PgOptions, channel: string, fn: () => void): Promise<() => Promise<void>> {
  let stopped = false;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;
  let pause = 100;
  const connect = async (first: boolean): Promise<void> => {
    const c = new pg.Client({
      connectionString: options.connectionString,
      application_name: `${options.applicationName ?? "skiff"}-listen`,
      connectionTimeoutMillis: 5_000,
    });
    c.on("notification", (msg) => {
      if (msg.channel === channel) fn();
    });
    c.on("error", () => {});
    c.on("end", () => {
      if (client === c) client = null;
      if (!stopped) again();
    });
    try {
      await c.connect();
      await c.query(`listen "${channel.replace(/"/g, '""')}"`);
    } catch (err) {
      c.removeAllListeners("end");
      await c.end().catch(() => {});
      if (first) throw err;
      again();
      return;
    }
    if (stopped) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    pause = 100;
    if (!first) fn();
  };
  const again = () => {
    if (retry || stopped) return;
    retry = setTimeout(() => {
      retry = null;
      void connect(false);
    }, pause);
    retry.unref();
    pause = Math.min(pause * 2, 5_000);
  };
  await connect(true);
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    const c = client;
    client = null;
    if (c) await c.end().catch(() => {});
  };
}
