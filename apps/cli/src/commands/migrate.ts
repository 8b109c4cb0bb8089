import { join } from "node:path";
import type { Command } from "commander";
import { databaseUrl, skiffHome } from "../env.ts";
import { databaseUnreachable } from "../startup-errors.ts";

export function registerMigrate(program: Command): void {
  program
    .command("migrate")
    .description("bring the database schema up to date (DATABASE_URL, else PGlite under $SKIFF_HOME/data)")
    .option("--json", "print the result as JSON")
    .action(async (opts: { json?: boolean }) => {
      const { createPgDb, createPgliteDb, migrate } = await import("@skiff/store");
      const url = databaseUrl();
      const db = url
        ? createPgDb({ connectionString: url, max: 1 })
        : await createPgliteDb({ dataDir: join(skiffHome(), "data") });
      try {
        const res = await migrate(db).catch((err: unknown) => {
          throw (url ? databaseUnreachable(err, url, "DATABASE_URL") : null) ?? err;
        });
        if (opts.json) console.log(JSON.stringify(res));
        else if (res.applied.length === 0) console.log(`schema is up to date (version ${res.current})`);
        else console.log(`applied ${res.applied.join(", ")}; schema at version ${res.current}`);
      } finally {
        await db.close();
      }
    });
}
