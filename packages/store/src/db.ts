/** What every SQL module needs: run one parameterised statement. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** A database adapter: PostgreSQL over a pool, or embedded PGlite. */
export interface Db extends Queryable {
  readonly kind: "pg" | "pglite";
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Runs `fn` on one dedicated connection (for session-level advisory locks). */
  session<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `fn` on each NOTIFY on `channel` (PostgreSQL: one dedicated connection that reconnects
   * by itself; `fn` is also called after each reconnect, since notifications sent while it was
   * away are lost). Resolves to a function that stops listening.
   */
  listen(channel: string, fn: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
