import { ERROR_CODES } from "@skiff/protocol";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleRequest } from "./fixtures.ts";
import { startTestApi, type TestApi } from "./harness.ts";

describe("bad input on every mutating endpoint [pglite]", () => {
  let t: TestApi;
  beforeAll(async () => {
    t = await startTestApi({
      adapter: "pglite",
      config: { failureLimitPerMinute: 1_000_000, bodyLimitBytes: 64 * 1024 },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  const tokenFor = (role: string) => (role === "agent" ? t.tokens.agent : t.tokens.admin);

  async function raw(
    method: string,
    path: string,
    token: string,
    body: string,
    contentType = "application/json",
  ) {
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": contentType },
      body,
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  function expectCatalogError(
    res: { status: number; body: any },
    status: number,
    code: string,
    what: string,
  ) {
    expect(res.status, what).toBe(status);
    expect(res.body.error.code, what).toBe(code);
    expect(ERROR_CODES).toContain(res.body.error.code);
    expect(JSON.stringify(res.body), what).not.toMatch(/\n\s+at /);
  }

  it("malformed JSON, wrong content type, unknown fields, wrong types and oversize get 4xx with a code and path", async () => {
    const mutating = t.api.routes.filter((r) => r.mutating && r.method !== "DELETE");
    expect(mutating.length).toBeGreaterThanOrEqual(12);
    for (const route of mutating) {
      const what = `${route.method} ${route.url}`;
      const sample = await sampleRequest(t, route);
      const token = tokenFor(route.role);
      expectCatalogError(
        await raw(route.method, sample.path, token, "{not json"),
        400,
        "invalid_json",
        `${what} malformed`,
      );
      expectCatalogError(
        await raw(route.method, sample.path, token, "name=x", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
        `${what} form body`,
      );
      const withExtra = { ...((sample.body as object) ?? {}), surprise: 1 };
      const unknown = await raw(route.method, sample.path, token, JSON.stringify(withExtra));
      expectCatalogError(unknown, 400, "invalid_input", `${what} unknown field`);
      expect(
        unknown.body.error.details.issues.map((i: { path: string }) => i.path),
        what,
      ).toContain("surprise");
      const wrongType = await raw(route.method, sample.path, token, JSON.stringify([1, 2, 3]));
      expectCatalogError(wrongType, 400, "invalid_input", `${what} array body`);
      const huge = JSON.stringify({ pad: "x".repeat(100 * 1024) });
      expectCatalogError(
        await raw(route.method, sample.path, token, huge),
        413,
        "payload_too_large",
        `${what} oversize`,
      );
    }
  });

  it("names the offending field for wrong types", async () => {
    const res = await raw(
      "POST",
      "/v1/jobs",
      t.tokens.operator,
      JSON.stringify({ name: "x", steps: [{ name: "a", run: 5 }] }),
    );
    expectCatalogError(res, 400, "invalid_input", "job with numeric run");
    expect(res.body.error.details.issues[0].path).toBe("steps[0].run");
    const fleet = await raw(
      "PUT",
      "/v1/fleet",
      t.tokens.operator,
      JSON.stringify({ mode: "auto", min: 5, max: 2 }),
    );
    expect(fleet.body.error.details.issues[0].path).toBe("min");
    const q = await t.call("GET", "/v1/jobs?state=sleeping", { token: t.tokens.viewer });
    expect(q.status).toBe(400);
    expect(q.body.error.details.issues[0].path).toBe("state");
  });

  it("an unknown route is a catalog 404", async () => {
    const res = await t.call("GET", "/v1/nope");
    expect(res).toMatchObject({ status: 404, body: { error: { code: "not_found" } } });
  });

  it("never answers 5xx to generated job specs (property)", async () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.oneof(
      scalar,
      fc.array(scalar, { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }),
    );
    const step = fc.record(
      {
        name: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), value),
        run: fc.oneof(fc.string({ maxLength: 40 }), value),
        network: fc.oneof(fc.constantFrom("on", "off", true, false, "maybe"), value),
        timeoutSeconds: fc.oneof(fc.integer({ min: -5, max: 100_000 }), value),
        extra: value,
      },
      { requiredKeys: [] },
    );
    const spec = fc.record(
      {
        name: fc.oneof(fc.string({ maxLength: 250 }), value),
        queue: fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), value),
        timeoutSeconds: fc.oneof(fc.integer(), value),
        maxAttempts: fc.oneof(fc.integer({ min: -1, max: 200 }), value),
        resources: fc.oneof(
          fc.record({ memoryMb: fc.integer(), cpus: fc.double(), pids: fc.integer() }, { requiredKeys: [] }),
          value,
        ),
        env: fc.oneof(
          fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
          value,
        ),
        secrets: fc.oneof(fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), value),
        steps: fc.oneof(fc.array(step, { maxLength: 4 }), value),
        image: value,
      },
      { requiredKeys: [] },
    );
    const validStep = fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
      run: fc.string({ minLength: 1, maxLength: 40 }),
      network: fc.constantFrom("on", "off", true, false),
    });
    const valid = fc.record({
      name: fc.string({ minLength: 1, maxLength: 200 }),
      steps: fc.uniqueArray(validStep, { minLength: 1, maxLength: 3, selector: (s) => s.name }),
    });
    const body = fc.oneof(
      { weight: 3, arbitrary: valid },
      { weight: 10, arbitrary: spec },
      { weight: 1, arbitrary: value },
    );
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await t.api.app.inject({
          method: "POST",
          url: "/v1/jobs",
          headers: { authorization: `Bearer ${t.tokens.operator}`, "content-type": "application/json" },
          payload: JSON.stringify(b),
        });
        if (res.statusCode === 201) accepted++;
        expect(res.statusCode).toBeLessThan(500);
        if (res.statusCode >= 400) expect(ERROR_CODES).toContain(res.json().error.code);
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(0);
  }, 300_000);
});
