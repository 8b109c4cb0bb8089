import { createPgDb, migrate } from "../packages/store/src/index.ts";
import { ensureTemplate } from "../packages/testkit/src/databases.ts";
import { pgGate } from "../packages/testkit/src/services.ts";

/** Runs once per `vitest run`: makes sure the migrated template every test database clones exists. */
export default async function setup(): Promise<void> {
  const pgOk = await pgGate();
  if (!pgOk.available) return; // the tests that need it fail (CI) or skip, each with the reason
  await ensureTemplate(async (url) => {
    const db = createPgDb({ connectionString: url, max: 1 });
    try {
      await migrate(db);
    } finally {
      await db.close();
    }
  });
}
