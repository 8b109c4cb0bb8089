import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type RunningApi, startApiServer } from "@skiff/api";
import { createTestDatabase, describeWith, pgGate, type TestDatabase, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { emptyHome, killLeftovers, runCli } from "./cli.ts";

/**
 * The operator's side of the sealed audit log: `skiff api` makes its key and checkpoints in
 * SKIFF_HOME, and `skiff audit verify --checkpoint FILE` names what a database owner did.
 */
describeWith(await pgGate(), "skiff audit verify against a database owner [pg]", () => {
  let database: TestDatabase;
  let running: RunningApi;
  let home: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    database = await createTestDatabase();
    home = emptyHome();
    running = await startApiServer(
      { port: 0, databaseUrl: database.url, skiffHome: home, auditCheckpointSeconds: 1 },
      pino({ level: "silent" }),
    );
    env = {
      SKIFF_URL: running.url,
      SKIFF_TOKEN: readFileSync(running.adminTokenFile, "utf8").trim(),
      SKIFF_HOME: emptyHome(),
    };
  });
  afterEach(() => {
    expect(killLeftovers(), "CLI processes left running").toBe(0);
  });
  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  const asOwner = (sql: string) =>
    running.store.db.tx(async (q) => {
      await q.query("alter table audit_log disable trigger audit_log_no_update");
      await q.query(sql);
      await q.query("alter table audit_log enable trigger audit_log_no_update");
    });

  it("the key is made once in SKIFF_HOME (0600); checkpoints are written out; verify says seals were checked", {
    timeout: 120_000,
  }, async () => {
    expect(running.auditKeySource).toContain(join(home, "audit.key"));
    expect(statSync(join(home, "audit.key")).mode & 0o777).toBe(0o600);
    for (const name of ["a", "b", "c", "d"]) {
      const made = await runCli(["tokens", "create", "--role", "viewer", "--name", `reader-${name}`], env);
      expect(made.code, made.stderr).toBe(0);
    }
    const head = (await running.store.listAudit({ limit: 1 }))[0]?.seq ?? 0;
    const file = join(home, "audit-checkpoints.jsonl");
    await waitFor(
      "a checkpoint of the head in the file",
      async () => {
        try {
          return readFileSync(file, "utf8").includes(`"seq":${head},`);
        } catch {
          return false;
        }
      },
      20_000,
      200,
    );
    const listed = await runCli(["audit", "checkpoints", "--json"], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`"seq":${head},`);
    const ok = await runCli(["audit", "verify", "--checkpoint", file], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /audit chain intact: \d+ entries checked, seals checked, \d+ checkpoints matched/,
    );

    // The owner deletes the newest rows: the chain left is whole, the checkpoint is not fooled.
    await asOwner(`delete from audit_log where seq > ${head - 2}`);
    const plain = await runCli(["audit", "verify"], env);
    expect(plain.code).toBe(0);
    const cut = await runCli(["audit", "verify", "--checkpoint", file], env);
    expect(cut.code).toBe(1);
    expect(cut.stderr).toMatch(
      /audit chain BROKEN at seq \d+ \(the log ends at row \d+ but the checkpoint of .* saw row \d+: rows were deleted\)/,
    );
  });

  it("a checkpoint file that is not one stops with the line and the field", async () => {
    const bad = join(home, "bad.jsonl");
    writeFileSync(bad, '{"seq":1,"hash":"x","at":"now","sig":"y"}\n');
    const res = await runCli(["audit", "verify", "--checkpoint", bad], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /--checkpoint: .*bad\.jsonl line 1 is not a checkpoint \(hash: expected a 64-character hex hash\)/,
    );
  });

  it("a row inserted by the owner without the key is named by verify", async () => {
    const last = (await running.store.listAudit({ limit: 1 }))[0];
    if (!last) throw new Error("no audit rows");
    const { hashEntry } = await import("@skiff/store");
    const row = {
      seq: last.seq + 1,
      at: new Date().toISOString(),
      actor: "mallory",
      role: "admin",
      action: "token.create",
      target: "tok_forged",
      outcome: "ok" as const,
      requestId: null,
      sourceIp: null,
      details: {},
    };
    const hash = hashEntry(last.hash, row);
    await running.store.db.query(
      `insert into audit_log (seq, at, actor, role, action, target, outcome, details, prev_hash, hash)
       values ($1, $2, $3, $4, $5, $6, $7, '{}', $8, $9)`,
      [row.seq, row.at, row.actor, row.role, row.action, row.target, row.outcome, last.hash, hash],
    );
    const res = await runCli(["audit", "verify"], env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`audit chain BROKEN at seq ${row.seq} (row ${row.seq} has no seal`);
  });
});
