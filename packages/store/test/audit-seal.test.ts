import { randomBytes } from "node:crypto";
import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  type AuditCheckpoint,
  GENESIS_HASH,
  hashEntry,
  openStore,
  type Store,
  sealOf,
} from "../src/index.ts";

/**
 * Someone who can write the audit table (the database owner, a leaked superuser password) but does
 * not hold the audit key tries to change history. Each attempt must be named by `verify`.
 */
describeWith(await pgGate(), "audit seals and checkpoints against a database owner [pg]", () => {
  let database: TestDatabase;
  let store: Store;
  const key = randomBytes(32);
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 2, auditKey: key });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  const append = (n: number) =>
    store.appendAudit({
      actor: "ann",
      role: "admin",
      action: "job.cancel",
      target: `job_${n}`,
      outcome: "ok",
      details: { n },
    });
  /** As the owner with the append-only trigger switched off. */
  const asOwner = (fn: (q: Store["db"]) => Promise<unknown>) =>
    store.db.tx(async (q) => {
      await q.query("alter table audit_log disable trigger audit_log_no_update");
      try {
        await fn(q as never);
      } finally {
        await q.query("alter table audit_log enable trigger audit_log_no_update");
      }
    });
  async function rows() {
    const res = await store.db.query<Record<string, unknown>>("select * from audit_log order by seq");
    return res.rows;
  }
  async function fresh(): Promise<void> {
    await asOwner((q) => q.query("delete from audit_log"));
  }
  /**
   * A row as a forger would chain it: correct seq, link and hash, with whatever seal they can make
   * of that hash (`sealWith` returns none, or one made with a key of their own).
   */
  async function forge(
    sealWith: (hash: string) => string | null,
    details: Record<string, unknown> = { forged: true },
  ) {
    const all = await rows();
    const last = all.at(-1);
    const seq = last ? Number(last.seq) + 1 : 1;
    const prevHash = (last?.hash as string | undefined) ?? GENESIS_HASH;
    const row = {
      seq,
      at: new Date().toISOString(),
      actor: "mallory",
      role: "admin",
      action: "token.create",
      target: "tok_x",
      outcome: "ok" as const,
      requestId: null,
      sourceIp: null,
      details,
    };
    const hash = hashEntry(prevHash, row);
    const seal = sealWith(hash);
    await store.db.query(
      `insert into audit_log (seq, at, actor, role, action, target, outcome, request_id, source_ip, details, prev_hash, hash, seal)
       values ($1, $2, $3, $4, $5, $6, $7, null, null, $8, $9, $10, $11)`,
      [
        seq,
        row.at,
        row.actor,
        row.role,
        row.action,
        row.target,
        row.outcome,
        JSON.stringify(details),
        prevHash,
        hash,
        seal,
      ],
    );
    return { seq, hash };
  }

  it("a sealed log verifies, seals checked", async () => {
    await fresh();
    for (let n = 1; n <= 5; n++) await append(n);
    expect(await store.verifyAudit()).toEqual({
      ok: true,
      checked: 5,
      sealed: true,
      unsealed: 0,
      checkpoints: 0,
    });
    for (const r of await rows()) expect(r.seal).toBe(sealOf(key, r.hash as string));
  });

  it("a forged row inserted with a correct chain but no seal is named", async () => {
    await fresh();
    for (let n = 1; n <= 3; n++) await append(n);
    const { seq } = await forge(() => null);
    expect(await store.verifyAudit()).toMatchObject({
      ok: false,
      firstBrokenSeq: seq,
      reason: expect.stringMatching(/has no seal/),
    });
  });

  it("a forged row sealed with another key is named", async () => {
    await fresh();
    for (let n = 1; n <= 3; n++) await append(n);
    const other = randomBytes(32);
    // A well-formed seal of the row's true hash, made with a key that is not the audit key.
    const { seq } = await forge((hash) => sealOf(other, hash));
    expect(await store.verifyAudit()).toMatchObject({
      ok: false,
      firstBrokenSeq: seq,
      reason: expect.stringMatching(/seal this audit key did not make/),
    });
  });

  it("no checkpoint vouches for a head the API did not write: no seal, another key's seal, or altered", async () => {
    await fresh();
    for (let n = 1; n <= 2; n++) await append(n);
    expect(await store.auditCheckpoint()).toMatchObject({ seq: 2 });
    const unsealed = await forge(() => null);
    await expect(store.auditCheckpoint()).rejects.toThrow(
      `audit row ${unsealed.seq} is not sealed by this audit key (forged, or written without the key)`,
    );
    await asOwner((q) => q.query("delete from audit_log where seq = $1", [unsealed.seq]));
    const otherKey = await forge((hash) => sealOf(randomBytes(32), hash));
    await expect(store.auditCheckpoint()).rejects.toThrow(/is not sealed by this audit key/);
    await asOwner((q) => q.query("delete from audit_log where seq = $1", [otherKey.seq]));
    // The API's own row, its content changed afterwards (seal and hash left as they were).
    await asOwner((q) => q.query("update audit_log set actor = 'mallory' where seq = 2"));
    await expect(store.auditCheckpoint()).rejects.toThrow(
      "audit row 2 was altered after it was written: no checkpoint signed for it",
    );
    await asOwner((q) => q.query("update audit_log set actor = 'ann' where seq = 2"));
    expect(await store.auditCheckpoint()).toMatchObject({ seq: 2 });
  });

  it("history rewritten from a row on, hashes recomputed, passes the chain but not the seals, nor the checkpoint", async () => {
    await fresh();
    for (let n = 1; n <= 5; n++) await append(n);
    const checkpoint = (await store.auditCheckpoint()) as AuditCheckpoint;
    expect(checkpoint).toMatchObject({ seq: 5 });
    // Rewrite rows 3..5 (a different target in row 3), recomputing every hash after it.
    await asOwner(async (q) => {
      const all = (await q.query<Record<string, unknown>>("select * from audit_log order by seq")).rows;
      let prevHash = all[1]?.hash as string;
      for (const r of all.slice(2)) {
        const row = {
          seq: Number(r.seq),
          at: new Date(r.at as string).toISOString(),
          actor: r.actor as string,
          role: r.role as string,
          action: r.action as string,
          target: Number(r.seq) === 3 ? "job_innocent" : (r.target as string),
          outcome: r.outcome as "ok",
          requestId: null,
          sourceIp: null,
          details: r.details as Record<string, unknown>,
        };
        const hash = hashEntry(prevHash, row);
        await q.query("update audit_log set target = $2, prev_hash = $3, hash = $4 where seq = $1", [
          row.seq,
          row.target,
          prevHash,
          hash,
        ]);
        prevHash = hash;
      }
    });
    // Without the key, the chain alone cannot tell: this is what the seals are for.
    const { verifyAudit } = await import("../src/sql/audit.ts");
    expect(await verifyAudit(store.db)).toMatchObject({ ok: true, checked: 5 });
    expect(await store.verifyAudit()).toMatchObject({
      ok: false,
      firstBrokenSeq: 3,
      reason: expect.stringMatching(/seal this audit key did not make/),
    });
    // Even with the seals stripped as well, the checkpoint taken before still catches it.
    await asOwner((q) => q.query("update audit_log set seal = null"));
    expect(await store.verifyAudit([checkpoint])).toMatchObject({
      ok: false,
      firstBrokenSeq: 5,
      reason: expect.stringMatching(/differs from the checkpoint of .*: history was rewritten/),
    });
  });

  it("rows deleted from the end are named by a checkpoint taken before", async () => {
    await fresh();
    for (let n = 1; n <= 5; n++) await append(n);
    const checkpoint = (await store.auditCheckpoint()) as AuditCheckpoint;
    await asOwner((q) => q.query("delete from audit_log where seq > 3"));
    // The chain that is left is whole: only something kept outside the database can tell.
    expect(await store.verifyAudit()).toMatchObject({ ok: true, checked: 3 });
    expect(await store.verifyAudit([checkpoint])).toMatchObject({
      ok: false,
      firstBrokenSeq: 4,
      reason: expect.stringMatching(
        /the log ends at row 3 but the checkpoint of .* saw row 5: rows were deleted/,
      ),
    });
  });

  it("a checkpoint not signed with the key is refused, so a forged file cannot vouch for a forged log", async () => {
    await fresh();
    for (let n = 1; n <= 2; n++) await append(n);
    const real = (await store.auditCheckpoint()) as AuditCheckpoint;
    const forged = { ...real, seq: 1 };
    expect(await store.verifyAudit([forged])).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not signed with this audit key/),
    });
    expect(await store.verifyAudit([real])).toMatchObject({ ok: true, checkpoints: 1 });
  });

  it("rows from before sealing was on are allowed only at the start, and counted", async () => {
    await fresh();
    const unsealedStore = await openStore({ databaseUrl: database.url, poolSize: 1, migrate: false });
    try {
      await unsealedStore.appendAudit({
        actor: "old",
        role: "admin",
        action: "job.cancel",
        target: "a",
        outcome: "ok",
      });
      await unsealedStore.appendAudit({
        actor: "old",
        role: "admin",
        action: "job.cancel",
        target: "b",
        outcome: "ok",
      });
      await append(3);
      expect(await store.verifyAudit()).toMatchObject({ ok: true, checked: 3, unsealed: 2 });
      // A process without the key writing after sealing began (a misconfigured controller) is named.
      await unsealedStore.appendAudit({
        actor: "late",
        role: "admin",
        action: "job.cancel",
        target: "c",
        outcome: "ok",
      });
      expect(await store.verifyAudit()).toMatchObject({
        ok: false,
        firstBrokenSeq: 4,
        reason: expect.stringMatching(/has no seal/),
      });
    } finally {
      await unsealedStore.close();
    }
  });
});

/** docs/operations.md's insert-only role, as written there: what the API can and cannot do with it. */
describeWith(await pgGate(), "the API as an insert-only database role [pg]", () => {
  let database: TestDatabase;
  let owner: Store;
  let app: Store;
  const role = `skiff_app_${randomBytes(4).toString("hex")}`;
  beforeAll(async () => {
    database = await createTestDatabase();
    owner = await openStore({ databaseUrl: database.url, poolSize: 1 });
    await owner.db.query(`create role ${role} login`);
    await owner.db.query(`grant usage on schema public to ${role}`);
    await owner.db.query(`grant select, insert, update, delete on all tables in schema public to ${role}`);
    await owner.db.query(`revoke update, delete, truncate on audit_log from ${role}`);
    await owner.db.query(`grant usage, select on all sequences in schema public to ${role}`);
    const url = new URL(database.url);
    url.username = role;
    // Already migrated by the owner; opening again (as every start does) must work for the role too.
    app = await openStore({ databaseUrl: url.toString(), poolSize: 1, auditKey: randomBytes(32) });
  });
  afterAll(async () => {
    await app?.close();
    await owner?.db.query(`drop owned by ${role}`).catch(() => {});
    await owner?.close();
    await database?.drop();
    const { Client } = await import("pg");
    const admin = new Client({
      connectionString: new URL("/postgres", database.url).toString().replace(/\/postgres$/, "/postgres"),
    });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`).catch(() => {});
    await admin.end();
  });

  it("appends and verifies, but cannot delete rows, switch the trigger off or truncate", async () => {
    await app.appendAudit({ actor: "ann", role: "admin", action: "job.cancel", target: "j", outcome: "ok" });
    expect(await app.verifyAudit()).toMatchObject({ ok: true, sealed: true });
    await expect(app.db.query("delete from audit_log")).rejects.toThrow(/permission denied/);
    await expect(app.db.query("truncate audit_log")).rejects.toThrow(/permission denied/);
    await expect(app.db.query("alter table audit_log disable trigger audit_log_no_update")).rejects.toThrow(
      /must be owner/,
    );
    await expect(app.db.query("update audit_log set actor = 'x'")).rejects.toThrow(/permission denied/);
  });
});
