import { createHash } from "node:crypto";
import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalJson, GENESIS_HASH, hashEntry, openStore, type Store } from "../src/index.ts";
import { verifyAudit } from "../src/sql/audit.ts";

describe("canonical JSON and the entry hash", () => {
  it("sorts keys at every level, keeps array order and drops undefined fields", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: 2, x: 1 }], c: null }, u: undefined })).toBe(
      '{"a":{"c":null,"d":[3,{"x":1,"y":2}]},"b":1}',
    );
    expect(canonicalJson([{ b: 2, a: 1 }, "s", 1.5, true, null])).toBe('[{"a":1,"b":2},"s",1.5,true,null]');
    expect(canonicalJson(undefined)).toBe("null");
    expect(canonicalJson({})).toBe("{}");
    expect(canonicalJson([])).toBe("[]");
    expect(canonicalJson('he said "hi"')).toBe('"he said \\"hi\\""');
  });

  it("hashes the previous hash then the row's canonical JSON, so a row read back in any key order checks out", () => {
    const row = {
      seq: 7,
      at: "2026-01-02T03:04:05.000Z",
      actor: "alice",
      role: "operator",
      action: "job.submit",
      target: "job_1",
      outcome: "ok" as const,
      requestId: "req-9",
      sourceIp: "10.0.0.1",
      details: { z: 1, a: [2, 1] },
    };
    const prev = "ab".repeat(32);
    const written =
      '{"action":"job.submit","actor":"alice","at":"2026-01-02T03:04:05.000Z","details":{"a":[2,1],"z":1},' +
      '"outcome":"ok","requestId":"req-9","role":"operator","seq":7,"sourceIp":"10.0.0.1","target":"job_1"}';
    const expected = createHash("sha256").update(prev).update(written).digest("hex");
    expect(hashEntry(prev, row)).toBe(expected);
    expect(hashEntry(prev, { ...row, details: { a: [2, 1], z: 1 } })).toBe(expected);
    expect(hashEntry(GENESIS_HASH, row)).not.toBe(expected);
    expect(hashEntry(prev, { ...row, target: "job_2" })).not.toBe(expected);
    expect(GENESIS_HASH).toBe("0".repeat(64));
  });
});

describeWith(await pgGate(), "appending, listing and verifying the audit chain [pg]", () => {
  // A fresh database per test: several tests forge rows, and each counts the chain from its start.
  let database: TestDatabase | undefined;
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    await database?.drop();
    store = undefined;
    database = undefined;
  });
  async function fresh(): Promise<Store> {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 2 });
    return store;
  }
  async function append(s: Store, n: number, actor = "fixture") {
    const out = [];
    for (let i = 0; i < n; i++) {
      out.push(
        await s.appendAudit({ actor, role: "admin", action: "fixture", target: `t${i}`, outcome: "ok" }),
      );
    }
    return out;
  }
  /** Edits a row as a superuser who switched the append-only trigger off would. */
  async function forge(s: Store, sql: string, params: unknown[]) {
    await s.db.tx(async (q) => {
      await q.query("alter table audit_log disable trigger audit_log_no_update");
      await q.query(sql, params);
      await q.query("alter table audit_log enable trigger audit_log_no_update");
    });
  }

  it("starts the chain at seq 1 from the genesis hash and links each entry to the one before", async () => {
    const s = await fresh();
    const first = await s.appendAudit({
      actor: "root",
      role: "admin",
      action: "token.create",
      target: "tok_1",
      outcome: "ok",
    });
    expect(first).toMatchObject({
      seq: 1,
      prevHash: GENESIS_HASH,
      requestId: null,
      sourceIp: null,
      details: {},
    });
    const second = await s.appendAudit({
      actor: "root",
      role: "admin",
      action: "token.revoke",
      target: "tok_1",
      outcome: "ok",
      requestId: "req-2",
      sourceIp: "192.0.2.7",
      details: {
        when: new Date("2026-01-01T00:00:00Z"),
        gone: undefined,
        n: 1,
        none: null,
        list: [null, "x"],
      },
    });
    expect(second).toMatchObject({ seq: 2, prevHash: first.hash, requestId: "req-2", sourceIp: "192.0.2.7" });
    // Details are stored as JSON: dates become strings, undefined fields vanish and nulls stay, as they read back.
    expect(second.details).toEqual({ when: "2026-01-01T00:00:00.000Z", n: 1, none: null, list: [null, "x"] });
    expect(await s.listAudit({ limit: 10 })).toEqual([second, first]);
    expect(await s.verifyAudit()).toMatchObject({ ok: true, checked: 2 });
  });

  it("lists newest first and filters by actor, action, target, time and cursor", async () => {
    const s = await fresh();
    const [a1] = await append(s, 1, "ann");
    const b = await s.appendAudit({
      actor: "bob",
      role: "viewer",
      action: "job.cancel",
      target: "job_9",
      outcome: "denied",
    });
    const [a2, a3] = await append(s, 2, "ann");
    if (!a1 || !a2 || !a3) throw new Error("fixture");
    const seqs = (list: { seq: number }[]) => list.map((e) => e.seq);
    expect(seqs(await s.listAudit({ limit: 10 }))).toEqual([a3.seq, a2.seq, b.seq, a1.seq]);
    expect(seqs(await s.listAudit({ limit: 2 }))).toEqual([a3.seq, a2.seq]);
    expect(seqs(await s.listAudit({ actor: "ann", limit: 10 }))).toEqual([a3.seq, a2.seq, a1.seq]);
    expect(seqs(await s.listAudit({ action: "job.cancel", limit: 10 }))).toEqual([b.seq]);
    expect(seqs(await s.listAudit({ target: "t0", limit: 10 }))).toEqual([a2.seq, a1.seq]);
    expect(seqs(await s.listAudit({ actor: "ann", target: "t1", limit: 10 }))).toEqual([a3.seq]);
    expect(seqs(await s.listAudit({ beforeSeq: a3.seq, limit: 10 }))).toEqual([a2.seq, b.seq, a1.seq]);
    expect(seqs(await s.listAudit({ beforeSeq: a2.seq, actor: "ann", limit: 10 }))).toEqual([a1.seq]);
    // `since` is inclusive and `until` exclusive, so consecutive windows never count an entry twice.
    expect(seqs(await s.listAudit({ since: b.at, limit: 10 }))).toContain(b.seq);
    expect(seqs(await s.listAudit({ until: b.at, limit: 10 }))).not.toContain(b.seq);
    expect(seqs(await s.listAudit({ since: a1.at, until: a1.at, limit: 10 }))).toEqual([]);
    expect(seqs(await s.listAudit({ since: "2999-01-01T00:00:00Z", limit: 10 }))).toEqual([]);
    expect(seqs(await s.listAudit({ until: "2000-01-01T00:00:00Z", limit: 10 }))).toEqual([]);
  });

  it("verifies a chain longer than one page, whatever the page size", async () => {
    const s = await fresh();
    await append(s, 5);
    for (const pageSize of [1, 2, 5, 6, 1000]) {
      expect(await verifyAudit(s.db, { pageSize }), `page size ${pageSize}`).toMatchObject({
        ok: true,
        checked: 5,
      });
    }
  });

  it("names a row deleted from the middle of the chain", async () => {
    const s = await fresh();
    await append(s, 4);
    await forge(s, "delete from audit_log where seq = $1", [3]);
    expect(await s.verifyAudit()).toMatchObject({
      ok: false,
      checked: 2,
      firstBrokenSeq: 3,
      reason: "row 3 is missing",
    });
  });

  it("names a row whose link to the one before was rewritten", async () => {
    const s = await fresh();
    await append(s, 4);
    await forge(s, "update audit_log set prev_hash = $2 where seq = $1", [3, GENESIS_HASH]);
    expect(await s.verifyAudit()).toMatchObject({
      ok: false,
      checked: 2,
      firstBrokenSeq: 3,
      reason: "row 3 does not link to row 2",
    });
  });

  it("names the first row whose content no longer matches its hash, whichever field was changed", async () => {
    const edits: [string, unknown][] = [
      ["actor = $2", "mallory"],
      ["role = $2", "viewer"],
      ["action = $2", "nothing"],
      ["target = $2", "elsewhere"],
      ["outcome = $2", "denied"],
      ["request_id = $2", "req-forged"],
      ["source_ip = $2", "203.0.113.9"],
      ["details = $2", JSON.stringify({ forged: true })],
      ["at = $2", "2001-01-01T00:00:00Z"],
    ];
    const s = await fresh();
    await append(s, 2 + edits.length);
    for (const [i, [set, value]] of edits.entries()) {
      const seq = 2 + edits.length - i; // from the newest down, so each edit is the first broken row
      await forge(s, `update audit_log set ${set} where seq = $1`, [seq, value]);
      expect(await s.verifyAudit(), set).toMatchObject({
        ok: false,
        checked: seq - 1,
        firstBrokenSeq: seq,
        reason: `row ${seq} was altered after it was written`,
      });
    }
  });
});
