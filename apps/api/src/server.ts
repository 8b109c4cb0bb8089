import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Bus, createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import type { FastifyBaseLogger } from "fastify";
import { type Api, buildApi } from "./app.ts";
import { loadAuditKey } from "./audit-key.ts";
import { bootstrapAdmin } from "./auth.ts";
import type { ApiConfigInput } from "./config.ts";

export interface RunningApi {
  api: Api;
  store: Store;
  bus: Bus;
  url: string;
  adminTokenFile: string;
  /** Where the audit key came from (null: audit entries are not sealed). */
  auditKeySource: string | null;
  /** Set when this start created the admin token. */
  createdAdminToken: boolean;
  stop(): Promise<void>;
}

/**
 * Opens the store (PostgreSQL when `databaseUrl` is set, else PGlite under `$SKIFF_HOME/data`) and
 * the bus (Redis when `redisUrl` is set, else in-process), makes sure an admin token exists, and
 * listens. `stop()` shuts down in order: HTTP, then bus, then store.
 */
export async function startApiServer(config: ApiConfigInput, logger: FastifyBaseLogger): Promise<RunningApi> {
  const home = resolve(config.skiffHome ?? ".skiff");
  // The home holds the admin token and, embedded, the whole database: only its owner may enter.
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const auditKey = loadAuditKey(home, process.env, true);
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.databaseUrl ? undefined : join(home, "data"),
    applicationName: "skiff-api",
    auditKey: auditKey?.key ?? null,
  });
  let bus: Bus;
  try {
    bus = await createBus({ redisUrl: config.redisUrl, prefix: config.busPrefix ?? "skiff", logger });
  } catch (err) {
    await store.close();
    throw err;
  }
  const written = await bootstrapAdmin(store, home);
  const api = buildApi({
    config: {
      ...config,
      skiffHome: home,
      auditCheckpointFile: config.auditCheckpointFile ?? join(home, "audit-checkpoints.jsonl"),
    },
    store,
    bus,
    logger,
  });
  let url: string;
  try {
    url = await api.listen();
  } catch (err) {
    await bus.close();
    await store.close();
    throw err;
  }
  return {
    api,
    store,
    bus,
    url,
    adminTokenFile: join(home, "admin.token"),
    auditKeySource: auditKey?.source ?? null,
    createdAdminToken: written !== null,
    async stop() {
      await api.shutdown();
      await bus.close();
      await store.close();
    },
  };
}
