import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { openStore, type Store } from "../src/index.ts";
import { spec } from "./fixtures.ts";

describeWith(await pgGate(), "concurrent claimers [pg]", () => {
  let store: Store;
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 12 });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it("8 claimers over 2,000 queued jobs claim every job exactly once", async () => {
    const s = spec({ queue: "bulk" });
    await store.db.tx(async (q) => {
      await q.query(
        `insert into jobs (id, name, queue, state, spec, max_attempts, timeout_seconds, created_by)
         select 'job_bulk_' || lpad(g::text, 5, '0'), $1, 'bulk', 'queued', $2, 3, 600, 'test'
           from generate_series(1, 2000) g`,
        [s.name, JSON.stringify(s)],
      );
    });
    const claims = new Map<string, string[]>();
    await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const agent = `claimer-${i}`;
        for (;;) {
          const got = await store.claimJobs(agent, ["bulk"], 7);
          if (got.length === 0) break;
          for (const c of got) claims.set(c.job.id, [...(claims.get(c.job.id) ?? []), agent]);
        }
      }),
    );
    expect(claims.size).toBe(2000);
    expect([...claims.values()].every((owners) => owners.length === 1)).toBe(true);
    const perAgent = new Map<string, number>();
    for (const [owner] of claims.values()) perAgent.set(owner ?? "", (perAgent.get(owner ?? "") ?? 0) + 1);
    expect(perAgent.size).toBe(8); // everybody got work: skip locked did not serialise them
    const left = await store.db.query(
      "select count(*)::int as n from jobs where queue = 'bulk' and state = 'queued'",
    );
    expect(left.rows[0]).toEqual({ n: 0 });
    const db = await store.db.query<{ n: number }>(
      "select count(*)::int as n from jobs where queue = 'bulk' and (epoch <> 1 or attempt <> 1)",
    );
    expect(db.rows[0]).toEqual({ n: 0 });
  });

  it("a claimer never gets a job of a queue it does not serve, even under contention", async () => {
    for (let i = 0; i < 50; i++)
      await store.submitJob(spec({ queue: i % 2 ? "odd" : "even" }), { actor: "t", role: "operator" });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.claimJobs(`mix-${i}`, [i % 2 ? "odd" : "even"], 10)),
    );
    results.forEach((got, i) => {
      for (const c of got) expect(c.job.queue).toBe(i % 2 ? "odd" : "even");
    });
    expect(results.flat().length).toBe(50);
  });

  it("audit appends from many concurrent transactions keep one unbroken chain", async () => {
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        store.appendAudit({
          actor: `p${i % 10}`,
          role: "operator",
          action: "load",
          target: String(i),
          outcome: "ok",
        }),
      ),
    );
    expect(await store.verifyAudit()).toMatchObject({ ok: true });
    const n = await store.db.query("select count(*)::int as n, max(seq)::int as m from audit_log");
    expect(n.rows[0]).toMatchObject({ n: (n.rows[0] as { m: number }).m });
  });
});
