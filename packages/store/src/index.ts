import { join } from "node:path";
import type { Db } from "./db.ts";
import { migrate } from "./migrate.ts";
import { createPgDb } from "./pg.ts";
import { createPgliteDb } from "./pglite.ts";
import { Store } from "./store.ts";

export type { Db, Queryable, QueryResult } from "./db.ts";
export { newId } from "./ids.ts";
export { loadMigrations, type MigrateResult, migrate } from "./migrate.ts";
export { createPgDb } from "./pg.ts";
export { createPgliteDb } from "./pglite.ts";
export type { AgentLease } from "./sql/agents.ts";
export {
  type AuditCheckpoint,
  type AuditDraft,
  AuditHeadError,
  canonicalJson,
  GENESIS_HASH,
  hashableOf,
  hashEntry,
  sealOf,
  signCheckpoint,
} from "./sql/audit.ts";
export type { StoredEvent } from "./sql/events.ts";
export type { FleetDecision, FleetUpdate, Leadership } from "./sql/fleet.ts";
export type { ClaimedJob, JobFilter } from "./sql/jobs.ts";
export { TRUNCATION_MARKER } from "./sql/lease.ts";
export { type Actor, type Audited, Store } from "./store.ts";

export interface OpenStoreOptions {
  /** A PostgreSQL URL; without one the embedded PGlite is used. */
  databaseUrl?: string;
  /** Where PGlite keeps its files (`$SKIFF_HOME/data`); omit for memory. */
  dataDir?: string;
  poolSize?: number;
  applicationName?: string;
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** The audit key (SKIFF_AUDIT_KEY): seals audit rows, signs checkpoints. */
  auditKey?: Buffer | null;
}

/** Opens the store the configuration asks for and brings its schema up to date. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  let db: Db;
  if (options.databaseUrl) {
    db = createPgDb({
      connectionString: options.databaseUrl,
      max: options.poolSize,
      applicationName: options.applicationName,
    });
  } else {
    db = await createPgliteDb({ dataDir: options.dataDir ? join(options.dataDir) : undefined });
  }
  try {
    if (options.migrate !== false) await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return new Store(db, options.auditKey ?? null);
}
