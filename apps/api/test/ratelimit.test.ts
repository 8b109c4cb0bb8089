import { describeWith, pgGate } from "@skiff/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { FailureLimiter } from "../src/ratelimit.ts";
import { startTestApi, type TestApi } from "./harness.ts";

const LIMIT = 5;

describeWith(await pgGate(), "failed requests are limited per token and per address [pg]", () => {
  let t: TestApi | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  // Each test gets its own API, so the limiter starts empty.
  const start = async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: LIMIT } });
    return t;
  };
  const whoami = (api: TestApi, authorization?: string) =>
    fetch(`${api.url}/v1/whoami`, { headers: authorization ? { authorization } : {} });

  it("a different made-up token on every try is still cut off with 429 after the limit for the address", async () => {
    const api = await start();
    for (let i = 0; i < LIMIT; i++) {
      const res = await whoami(api, `Bearer skf_made-up-${i}`);
      expect(res.status, `made-up token ${i}`).toBe(401);
    }
    const limited = await whoami(api, `Bearer skf_made-up-${LIMIT}`);
    expect(limited.status).toBe(429);
    const body = (await limited.json()) as any;
    expect(body.error.code).toBe("rate_limited");
    expect(body.error.message).toContain("127.0.0.1");
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Nor does leaving the token out get round it.
    expect((await whoami(api)).status).toBe(429);

    // Only the refused are refused: a real token from the same address is judged by its own record.
    expect(await api.call("GET", "/v1/whoami", { token: api.tokens.viewer })).toEqual({
      status: 200,
      body: { name: "victor", role: "viewer" },
    });
    // The limited attempts were not audited one by one: the audit log holds the five 401s only.
    const denied = (await api.store.listAudit({ limit: 100 })).filter((e) => e.outcome === "denied");
    expect(denied.map((e) => e.details.status)).toEqual([401, 401, 401, 401, 401]);
  });

  it("one real token that keeps being refused (403) is limited on its own; other tokens from the address are not", async () => {
    const api = await start();
    for (let i = 0; i < LIMIT; i++) {
      expect((await api.call("POST", "/v1/tokens", { token: api.tokens.viewer, body: {} })).status).toBe(403);
    }
    const limited = await whoami(api, `Bearer ${api.tokens.viewer}`);
    expect(limited.status).toBe(429);
    const body = (await limited.json()) as any;
    expect(body.error.code).toBe("rate_limited");
    expect(body.error.message).toMatch(/^too many failed requests; retry in \d+ s$/);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(30);
    // 403s do not count against the address: the operator from the same address goes on working,
    // and a caller with a bad token is still told 401, not 429.
    expect(await api.call("GET", "/v1/whoami", { token: api.tokens.operator })).toEqual({
      status: 200,
      body: { name: "olivia", role: "operator" },
    });
    expect((await whoami(api, "Bearer skf_made-up")).status).toBe(401);
  });

  it("successes are not failures: many good requests never add up to a limit", async () => {
    const api = await start();
    for (let i = 0; i < LIMIT * 3; i++) {
      expect((await api.call("GET", "/v1/whoami", { token: api.tokens.viewer })).status).toBe(200);
    }
    // Probes need no token and are never limited, however many come.
    for (let i = 0; i < LIMIT * 2; i++) expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
  });
});

describe("FailureLimiter (sliding one-minute window, explicit clock)", () => {
  const T0 = 1_700_000_000_000;

  it("lets a key fail `limit` times, then names the seconds until its oldest failure leaves the window", () => {
    const limiter = new FailureLimiter(3);
    expect(limiter.retryAfter("k", T0)).toBe(0);
    limiter.fail("k", T0);
    limiter.fail("k", T0 + 10_000);
    expect(limiter.retryAfter("k", T0 + 10_000)).toBe(0);
    limiter.fail("k", T0 + 20_000);
    expect(limiter.retryAfter("k", T0 + 20_000)).toBe(40);
    expect(limiter.retryAfter("k", T0 + 59_001)).toBe(1);
    // Another key is not touched by this one's failures.
    expect(limiter.retryAfter("other", T0 + 20_000)).toBe(0);
  });

  it("forgets a failure exactly one minute after it happened", () => {
    const limiter = new FailureLimiter(2);
    limiter.fail("k", T0);
    limiter.fail("k", T0 + 30_000);
    expect(limiter.retryAfter("k", T0 + 59_999)).toBe(1);
    expect(limiter.retryAfter("k", T0 + 60_000)).toBe(0);
    limiter.fail("k", T0 + 60_000);
    expect(limiter.retryAfter("k", T0 + 60_000)).toBe(30);
    expect(limiter.retryAfter("k", T0 + 90_000)).toBe(0);
  });

  it("says at least one second while limited, even when the window ends within the current second", () => {
    const limiter = new FailureLimiter(1);
    limiter.fail("k", T0);
    expect(limiter.retryAfter("k", T0 + 59_999)).toBe(1);
    expect(limiter.retryAfter("k", T0 + 59_000)).toBe(1);
    expect(limiter.retryAfter("k", T0 + 58_999)).toBe(2);
  });

  it("keeps at most maxKeys keys, dropping the one that failed least recently", () => {
    const limiter = new FailureLimiter(1, 2);
    limiter.fail("a", T0);
    limiter.fail("b", T0 + 1);
    limiter.fail("a", T0 + 2); // a is now the most recent
    limiter.fail("c", T0 + 3); // over the bound: b goes
    expect(limiter.retryAfter("a", T0 + 4)).toBeGreaterThan(0);
    expect(limiter.retryAfter("b", T0 + 4)).toBe(0);
    expect(limiter.retryAfter("c", T0 + 4)).toBeGreaterThan(0);
  });
});
