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
  close(): Promise<void>;
}
