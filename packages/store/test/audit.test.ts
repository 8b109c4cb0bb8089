import { expect, it } from "vitest";
import { alice, spec } from "./fixtures.ts";
import { describeEachAdapter } from "./harness.ts";

describeEachAdapter("audit log", (store) => {
  it("chains every entry to the one before and verifies clean", async () => {
    for (let i = 0; i < 5; i++) await store().submitJob(spec({ name: `audit-${i}` }), alice);
    await store().appendAudit({
      actor: "mallory",
      role: "viewer",
      action: "job.submit",
      target: "jobs",
      outcome: "denied",
    });
    const entries = await store().listAudit({ limit: 100 });
    expect(entries.length).toBeGreaterThanOrEqual(6);
    for (let i = 0; i < entries.length - 1; i++) {
      expect(entries[i]?.prevHash).toBe(entries[i + 1]?.hash);
      expect(entries[i]?.seq).toBe((entries[i + 1]?.seq ?? 0) + 1);
    }
    expect(await store().verifyAudit()).toMatchObject({ ok: true, checked: entries.length });
    expect((await store().listAudit({ actor: "mallory", limit: 10 })).map((e) => e.outcome)).toEqual([
      "denied",
    ]);
  });

  it("keeps one unbroken chain under concurrent appends", async () => {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store().appendAudit({
          actor: `c${i}`,
          role: "operator",
          action: "test.concurrent",
          target: `t${i}`,
          outcome: "ok",
        }),
      ),
    );
    const res = await store().verifyAudit();
    expect(res.ok).toBe(true);
    expect((await store().listAudit({ action: "test.concurrent", limit: 100 })).length).toBe(40);
  });

  it("refuses UPDATE, DELETE and TRUNCATE on the audit table", async () => {
    await store().appendAudit({ actor: "a", role: "admin", action: "x", target: "y", outcome: "ok" });
    await expect(store().db.query("update audit_log set actor = 'eve'")).rejects.toThrow(/append-only/);
    await expect(store().db.query("delete from audit_log")).rejects.toThrow(/append-only/);
    await expect(store().db.query("truncate audit_log")).rejects.toThrow(/append-only/);
    expect((await store().verifyAudit()).ok).toBe(true);
  });

  it("names the first altered row when a superuser edits one with the trigger disabled", async () => {
    for (let i = 0; i < 3; i++) {
      await store().appendAudit({
        actor: "b",
        role: "admin",
        action: "tamper.fixture",
        target: `${i}`,
        outcome: "ok",
      });
    }
    const [newest] = await store().listAudit({ limit: 1 });
    const victim = (newest?.seq ?? 0) - 1;
    await store().db.tx(async (q) => {
      await q.query("alter table audit_log disable trigger audit_log_no_update");
      await q.query("update audit_log set details = '{\"forged\":true}' where seq = $1", [victim]);
      await q.query("alter table audit_log enable trigger audit_log_no_update");
    });
    const res = await store().verifyAudit();
    expect(res).toMatchObject({ ok: false, firstBrokenSeq: victim, checked: victim - 1 });
    expect(res.reason).toMatch(/altered/);
  });
});
