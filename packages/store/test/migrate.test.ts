import { spawn } from "node:child_process";
import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, expect, it } from "vitest";
import { createPgDb, createPgliteDb, loadMigrations, migrate } from "../src/index.ts";

const root = new URL("../../../", import.meta.url).pathname;
const created: TestDatabase[] = [];
afterAll(async () => {
  for (const d of created) await d.drop();
});

function migrateInChild(url: string): Promise<{ code: number | null; out: string }> {
  const script = `import { createPgDb, migrate } from "./packages/store/src/index.ts";
    const db = createPgDb({ connectionString: process.env.URL, max: 1 });
    const res = await migrate(db); await db.close(); console.log(JSON.stringify(res));`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: root,
      env: { ...process.env, URL: url },
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    child.on("exit", (code) => resolve({ code, out }));
  });
}

describeWith(await pgGate(), "migrations [pg]", () => {
  it("applies every migration once; running again is a no-op", async () => {
    const d = await createTestDatabase({ empty: true });
    created.push(d);
    const db = createPgDb({ connectionString: d.url, max: 2 });
    try {
      const first = await migrate(db);
      expect(first.applied).toHaveLength(loadMigrations().length);
      const second = await migrate(db);
      expect(second.applied).toEqual([]);
      const rows = await db.query("select count(*)::int as n from skiff_migrations");
      expect(rows.rows[0]).toEqual({ n: loadMigrations().length });
    } finally {
      await db.close();
    }
  });

  it("two processes migrating one empty database at once leave one correct schema", async () => {
    const d = await createTestDatabase({ empty: true });
    created.push(d);
    const [a, b] = await Promise.all([migrateInChild(d.url), migrateInChild(d.url)]);
    expect(a.code, a.out).toBe(0);
    expect(b.code, b.out).toBe(0);
    const applied = [JSON.parse(a.out).applied.length, JSON.parse(b.out).applied.length].sort();
    expect(applied).toEqual([0, loadMigrations().length]);
    const db = createPgDb({ connectionString: d.url, max: 1 });
    try {
      const fleet = await db.query("select count(*)::int as n from fleet_settings");
      expect(fleet.rows[0]).toEqual({ n: 1 });
    } finally {
      await db.close();
    }
  });
});

describeWith({ available: true, missing: null }, "migrations [pglite]", () => {
  it("a file-backed database keeps its schema and data across reopen", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "skiff-pglite-"));
    try {
      const db1 = await createPgliteDb({ dataDir: dir });
      expect((await migrate(db1)).applied.length).toBe(loadMigrations().length);
      await db1.query("update fleet_settings set replicas = 7");
      await db1.close();
      const db2 = await createPgliteDb({ dataDir: dir });
      expect((await migrate(db2)).applied).toEqual([]);
      expect((await db2.query("select replicas from fleet_settings")).rows[0]).toEqual({ replicas: 7 });
      await db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
