import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, beforeAll } from "vitest";
import { openStore, type Store } from "../src/index.ts";

export type AdapterName = "pg" | "pglite";
export const ADAPTERS: AdapterName[] = ["pg", "pglite"];

const pg = await pgGate();

/**
 * Runs one suite against each adapter: real PostgreSQL (a fresh database cloned from the migrated
 * template for this file, dropped after) and in-memory PGlite.
 */
export function describeEachAdapter(
  name: string,
  fn: (store: () => Store, adapter: AdapterName) => void,
): void {
  for (const adapter of ADAPTERS) {
    const gate = adapter === "pg" ? pg : { available: true, missing: null };
    describeWith(gate, `${name} [${adapter}]`, () => {
      let store: Store | undefined;
      let database: TestDatabase | undefined;
      beforeAll(async () => {
        if (adapter === "pg") {
          database = await createTestDatabase();
          store = await openStore({ databaseUrl: database.url, poolSize: 10 });
        } else {
          store = await openStore({});
        }
      });
      afterAll(async () => {
        await store?.close();
        await database?.drop();
      });
      fn(() => {
        if (!store) throw new Error("store not open");
        return store;
      }, adapter);
    });
  }
}

export { pg as pgAvailability };
