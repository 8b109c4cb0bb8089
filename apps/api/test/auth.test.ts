import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore, type Store } from "@skiff/store";
import { createTestDatabase, describeWith, pgGate, type TestDatabase } from "@skiff/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { authenticate, bootstrapAdmin, hashToken, hashTokenCached, newTokenSecret } from "../src/auth.ts";

describe("token secrets and their hashes", () => {
  it("a new secret is skf_ and 43 base64url characters (256 random bits), never the same twice", () => {
    const secrets = new Set(Array.from({ length: 50 }, () => newTokenSecret()));
    expect(secrets.size).toBe(50);
    for (const s of secrets) expect(s).toMatch(/^skf_[A-Za-z0-9_-]{43}$/);
  });

  it("only the SHA-256 of a token is compared or stored, in hex", () => {
    expect(hashToken("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("the cached hash is the hash, for tokens seen before and after the cache starts over", () => {
    const headers = Array.from({ length: 2_500 }, (_, i) => `Bearer skf_${i}`);
    for (const h of headers) expect(hashTokenCached(h)).toBe(hashToken(h));
    for (const h of headers.slice(0, 10)) expect(hashTokenCached(h)).toBe(hashToken(h));
  });
});

describeWith(await pgGate(), "authenticate and bootstrapAdmin [pg]", () => {
  let database: TestDatabase;
  let store: Store;
  const homes: string[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 2 });
  });
  afterEach(() => {
    for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  async function issue(secret: string, name: string) {
    const { value } = await store.createToken(
      { name, role: "operator", hash: hashToken(secret) },
      { actor: "test", role: "system" },
    );
    return value;
  }

  it("accepts `Bearer <token>` in any case and with extra spaces, and nothing else", async () => {
    const secret = newTokenSecret();
    const token = await issue(secret, "header-forms");
    const who = { tokenId: token.id, name: "header-forms", role: "operator" };
    for (const header of [
      `Bearer ${secret}`,
      `bearer ${secret}`,
      `BEARER  ${secret}`,
      `Bearer\t${secret}  `,
    ]) {
      expect(await authenticate(store, header), JSON.stringify(header)).toMatchObject(who);
    }
    for (const header of [
      undefined,
      "",
      secret,
      `Basic ${secret}`,
      `Bearer${secret}`,
      `xBearer ${secret}`,
      `Bearer ${secret} ${secret}`,
      `Bearer ${secret}x`,
      "Bearer ",
    ]) {
      expect(await authenticate(store, header), JSON.stringify(header)).toBeNull();
    }
  });

  it("takes tokens up to 200 characters and refuses longer ones unseen", async () => {
    const longest = `skf_${"a".repeat(196)}`;
    const tooLong = `skf_${"b".repeat(197)}`;
    await issue(longest, "longest");
    await issue(tooLong, "too-long");
    expect(await authenticate(store, `Bearer ${longest}`)).toMatchObject({ name: "longest" });
    expect(await authenticate(store, `Bearer ${tooLong}`)).toBeNull();
  });

  it("a revoked token authenticates no more", async () => {
    const secret = newTokenSecret();
    const token = await issue(secret, "revoked");
    await store.revokeToken(token.id, { actor: "test", role: "system" });
    expect(await authenticate(store, `Bearer ${secret}`)).toBeNull();
  });

  it("bootstrapAdmin creates the home 0700, replaces a stale admin.token with a 0600 one, and audits it", async () => {
    const db = await createTestDatabase();
    const empty = await openStore({ databaseUrl: db.url, poolSize: 2 });
    const parent = mkdtempSync(join(tmpdir(), "skiff-auth-"));
    homes.push(parent);
    try {
      // A home left from an older install: the directory exists and so does a world-readable token.
      const old = join(parent, "old");
      mkdirSync(old);
      writeFileSync(join(old, "admin.token"), "skf_stale\n", { mode: 0o644 });
      const file = await bootstrapAdmin(empty, old);
      expect(file).toBe(join(old, "admin.token"));
      const secret = readFileSync(join(old, "admin.token"), "utf8");
      expect(secret).not.toContain("stale");
      expect(secret).toMatch(/^skf_[A-Za-z0-9_-]{43}\n$/);
      expect(statSync(join(old, "admin.token")).mode & 0o777).toBe(0o600);
      expect(await authenticate(empty, `Bearer ${secret.trim()}`)).toMatchObject({
        name: "admin",
        role: "admin",
      });
      const [audit] = await empty.listAudit({ limit: 1 });
      expect(audit).toMatchObject({ actor: "bootstrap", role: "system", action: "token.create" });

      // Once an admin exists, a second boot writes nothing, wherever its home is.
      const again = join(parent, "again");
      expect(await bootstrapAdmin(empty, again)).toBeNull();
      expect(existsSync(again)).toBe(false);
      expect((await empty.listTokens()).filter((t) => t.role === "admin")).toHaveLength(1);

      // A home that does not exist yet, two levels deep, is created private.
      const db2 = await createTestDatabase();
      const other = await openStore({ databaseUrl: db2.url, poolSize: 2 });
      try {
        const nested = join(parent, "new", "home");
        expect(await bootstrapAdmin(other, nested)).toBe(join(nested, "admin.token"));
        expect(statSync(nested).mode & 0o777).toBe(0o700);
      } finally {
        await other.close();
        await db2.drop();
      }
    } finally {
      await empty.close();
      await db.drop();
    }
  });
});
