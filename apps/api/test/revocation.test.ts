import { createBus, createMemoryBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { createTestDatabase, describeWith, pgGate, type TestDatabase, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { hashToken, newTokenSecret } from "../src/auth.ts";
import { PrincipalCache } from "../src/principals.ts";
import { startTestApi, type TestApi } from "./harness.ts";

const bearer = (token: string) => `Bearer ${token}`;

describeWith(await pgGate(), "revocation on the replica that revoked [pg]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("with the bus closed (no wake-up comes back to anyone), a token revoked here is refused on its next request", async () => {
    const made = (await t.call("POST", "/v1/tokens", { body: { name: "soon-gone", role: "operator" } })).body;
    // Used once, so this replica now has it cached.
    expect(await t.call("GET", "/v1/whoami", { token: made.token })).toEqual({
      status: 200,
      body: { name: "soon-gone", role: "operator" },
    });
    // The bus is gone: wake-ups and events now fail, so nothing echoes the revocation back.
    await t.bus.close();
    await expect(t.bus.wake("probe")).rejects.toThrow(/closed/);

    expect((await t.call("DELETE", `/v1/tokens/${made.id}`)).status).toBe(200);
    const after = await t.call("GET", "/v1/whoami", { token: made.token });
    expect(after).toMatchObject({ status: 401, body: { error: { code: "unauthorized" } } });
    // The refusal does not leak into other tokens' cached entries.
    expect((await t.call("GET", "/v1/whoami", { token: t.tokens.viewer })).status).toBe(200);
  });
});

describeWith(await pgGate(), "PrincipalCache [pg]", () => {
  let store: Store;
  let database: TestDatabase | undefined;
  const logger = pino({ level: "silent" });
  const closers: (() => Promise<void> | void)[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    store = await openStore({ databaseUrl: database.url, poolSize: 4 });
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  async function token(name: string) {
    const secret = newTokenSecret();
    const { value } = await store.createToken(
      { name, role: "viewer", hash: hashToken(secret) },
      { actor: "test", role: "system" },
    );
    return { secret, id: value.id };
  }
  /** Revoked in the database only, as another replica would: the cache hears of it through the bus or not at all. */
  const revokeElsewhere = (id: string) => store.revokeToken(id, { actor: "test", role: "system" });

  function cache(opts: { ttlMs?: number; maxEntries?: number } = {}) {
    const bus = createMemoryBus({ logger });
    const c = new PrincipalCache(store, bus, opts.ttlMs ?? 60_000, opts.maxEntries ?? 10_000);
    closers.push(
      () => bus.close(),
      () => c.close(),
    );
    return { cache: c, bus };
  }

  it("no header is nobody, and is not looked up", async () => {
    const { cache: c } = cache();
    expect(await c.resolve(undefined)).toEqual({ who: null, fresh: false });
  });

  it("looks a token up once, then answers from memory until the TTL", async () => {
    const { cache: c } = cache();
    const tok = await token("cached");
    const first = await c.resolve(bearer(tok.secret));
    expect(first).toMatchObject({ who: { tokenId: tok.id, name: "cached", role: "viewer" }, fresh: true });
    await revokeElsewhere(tok.id);
    // Within the TTL and with no word of the revocation, the cached answer stands (the bounded window).
    expect(await c.resolve(bearer(tok.secret))).toEqual({ who: first.who, fresh: false });
  });

  it("revoked() on this replica drops the entry at once, even when the bus is closed", async () => {
    const { cache: c, bus } = cache();
    const tok = await token("revoked-here");
    const other = await token("bystander");
    await c.resolve(bearer(tok.secret));
    await c.resolve(bearer(other.secret));
    await bus.close();
    await revokeElsewhere(tok.id);
    await c.revoked(tok.id);
    expect(await c.resolve(bearer(tok.secret))).toEqual({ who: null, fresh: true });
    expect((await c.resolve(bearer(other.secret))).fresh).toBe(false);
  });

  it("a revocation on another replica reaches this one through the bus", async () => {
    const bus = createMemoryBus({ logger });
    const here = new PrincipalCache(store, bus, 60_000);
    const there = new PrincipalCache(store, bus, 60_000);
    closers.push(
      () => bus.close(),
      () => here.close(),
      () => there.close(),
    );
    const tok = await token("revoked-there");
    await here.resolve(bearer(tok.secret));
    await revokeElsewhere(tok.id);
    await there.revoked(tok.id);
    await waitFor("the revocation to reach the other replica", async () => {
      const res = await here.resolve(bearer(tok.secret));
      return res.who === null;
    });
    expect(await here.resolve(bearer(tok.secret))).toEqual({ who: null, fresh: true });
  });

  it("an agent gone on another replica loses its own credential here through the bus", async () => {
    const bus = createMemoryBus({ logger });
    const here = new PrincipalCache(store, bus, 60_000);
    const there = new PrincipalCache(store, bus, 60_000);
    closers.push(
      () => bus.close(),
      () => here.close(),
      () => there.close(),
    );
    const pool = await store.createToken(
      { name: "pool", role: "agent", hash: hashToken(newTokenSecret()) },
      { actor: "test", role: "system" },
    );
    const credential = newTokenSecret();
    const { value: agent } = await store.registerAgent(
      {
        name: "leaving",
        version: "1",
        slots: 1,
        labels: {},
        queues: ["default"],
        sandbox: "none",
        resources: {},
        tokenId: pool.value.id,
        credentialHash: hashToken(credential),
      },
      { actor: "test", role: "system" },
    );
    expect((await here.resolve(bearer(credential))).who).toMatchObject({ agentId: agent.id, role: "agent" });
    await store.deregisterAgent(agent.id, { actor: "test", role: "system" });
    await there.agentsGone([agent.id]);
    await waitFor("the agent's departure to reach the other replica", async () => {
      return (await here.resolve(bearer(credential))).who === null;
    });
  });

  it("ordinary queue wake-ups on the bus leave cached tokens alone", async () => {
    const { cache: c, bus } = cache();
    const tok = await token("queue-named");
    await c.resolve(bearer(tok.secret));
    // A queue whose name ends in the token id, after a prefix as long as the revocation one.
    await bus.wake(`queue-for-xyz:${tok.id}`);
    await bus.wake(tok.id);
    expect((await c.resolve(bearer(tok.secret))).fresh).toBe(false);
  });

  it("after close() it no longer listens to the bus", async () => {
    const bus = createMemoryBus({ logger });
    const here = new PrincipalCache(store, bus, 60_000);
    const there = new PrincipalCache(store, bus, 60_000);
    closers.push(
      () => bus.close(),
      () => there.close(),
    );
    const tok = await token("closed-cache");
    await here.resolve(bearer(tok.secret));
    here.close();
    await there.revoked(tok.id);
    // `there` heard its own wake-up (so delivery is done); `here`, closed, kept its entry.
    expect((await here.resolve(bearer(tok.secret))).fresh).toBe(false);
  });

  it("an expired entry is looked up again and a revoked token then refused", async () => {
    const { cache: c } = cache({ ttlMs: 0 });
    const tok = await token("short-ttl");
    expect((await c.resolve(bearer(tok.secret))).who?.name).toBe("short-ttl");
    await revokeElsewhere(tok.id);
    expect(await c.resolve(bearer(tok.secret))).toEqual({ who: null, fresh: true });
  });

  it("unknown tokens are never remembered, and a token refused once is looked up again", async () => {
    const { cache: c } = cache();
    expect(await c.resolve(bearer("skf_never-issued"))).toEqual({ who: null, fresh: true });
    expect(await c.resolve(bearer("skf_never-issued"))).toEqual({ who: null, fresh: true });
  });

  it("keeps at most maxEntries principals; past that it starts over rather than grow", async () => {
    const { cache: c } = cache({ maxEntries: 2 });
    const a = await token("a");
    const b = await token("b");
    const d = await token("d");
    await c.resolve(bearer(a.secret));
    await c.resolve(bearer(b.secret));
    expect((await c.resolve(bearer(a.secret))).fresh).toBe(false);
    await c.resolve(bearer(d.secret)); // full: forgets a and b, keeps d
    expect((await c.resolve(bearer(d.secret))).fresh).toBe(false);
    expect((await c.resolve(bearer(a.secret))).fresh).toBe(true);
  });

  it("with Redis unreachable, the Redis bus still hands this replica its own revocation at once", async () => {
    const bus = await createBus({ redisUrl: "redis://127.0.0.1:1", prefix: "revocation-test", logger });
    const c = new PrincipalCache(store, bus, 60_000);
    closers.push(
      () => bus.close(),
      () => c.close(),
    );
    await expect(bus.ping()).rejects.toThrow();
    const tok = await token("redis-down");
    await c.resolve(bearer(tok.secret));
    await revokeElsewhere(tok.id);
    await c.revoked(tok.id);
    expect(await c.resolve(bearer(tok.secret))).toEqual({ who: null, fresh: true });
  });
});
