import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ERROR_CODES, type ErrorCode, statusOf } from "@skiff/protocol";
import { describeWith, pgGate } from "@skiff/testkit";
import fc from "fast-check";
import { Pool } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RouteDef } from "../src/index.ts";
import { type SampleRequest, sampleRequest } from "./fixtures.ts";
import { startTestApi, type TestApi } from "./harness.ts";

/**
 * Hostile clients against every endpoint of a real API on PostgreSQL: arbitrary Unicode (NUL, lone
 * surrogates, astral characters), huge and negative numbers, odd path segments, forged cursors and
 * arbitrary JSON shapes. No answer may be a 5xx, and every 4xx carries a catalog code.
 */

/**
 * Runs per endpoint that reads input (a quarter for one that reads none: probes, plain listings).
 * About 30 endpoints: the file takes about 20 s on an idle 2-core machine.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 120);

interface Endpoint {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  role: string;
  route?: RouteDef;
}

/**
 * Every method and path declared in the API's source (`RouteDef`s, and routes put on the app
 * directly such as the probes), so a new route cannot escape the fuzzer.
 */
function declaredRoutes(): string[] {
  const src = join(import.meta.dirname, "../src");
  const files = [...readdirSync(join(src, "routes")).map((f) => join(src, "routes", f)), join(src, "app.ts")];
  const out: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/method: "(GET|POST|PUT|DELETE)",\s*url: "([^"]+)"/g))
      out.push(`${m[1]} ${m[2]}`);
    for (const m of text.matchAll(/app\.(get|post|put|delete)\("([^"]+)"/g))
      out.push(`${m[1]?.toUpperCase()} ${m[2]}`);
  }
  return [...new Set(out)];
}

// --- generators -----------------------------------------------------------------------------------

/** UTF-16 code units, biased towards the ones that broke things: NUL, surrogates, controls. */
const codeUnit = fc
  .oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(0, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfffd, 0xfeff, 0x2028, 0x1b, 0x0a, 0x7f),
    },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  )
  .map((c) => String.fromCharCode(c));

const hostileString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "",
      " ",
      "\u0000",
      "a\u0000b",
      "\ud800",
      "\udfff",
      "x\ud83d",
      "\ude00y",
      "😀",
      "2026",
      "-1",
      "1e400",
      "NaN",
      "../..",
      "x".repeat(300),
    ),
  },
);

const hostileNumber = fc.oneof(
  fc.integer(),
  fc.constantFrom(
    2 ** 31,
    2 ** 31 - 1,
    -(2 ** 31),
    -(2 ** 31) - 1,
    2 ** 32,
    2 ** 53,
    -(2 ** 53),
    2 ** 63,
    1e308,
    -1e308,
    0.5,
    -0,
    -1,
    0,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    hostileString,
    hostileNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(hostileString, tie("value"), { maxKeys: 3 }),
  ),
})).value;

/** Percent-encodes a string's UTF-8 bytes (a lone surrogate becomes U+FFFD, as any client sends it). */
function encode(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Path segments and query values as they go on the wire, including malformed escapes. */
const rawSegment = fc.constantFrom(
  "%00",
  "%",
  "%zz",
  "%ED%A0%80",
  "%C0%AF",
  "%FF%FE",
  "..",
  ".",
  "%2e%2e",
  "a%2Fb",
  "%F0%9F%98%80",
  "%EF%BF%BD",
  "x".repeat(1000),
  "-1",
  "9".repeat(30),
);
const wireString = fc.oneof(
  { weight: 3, arbitrary: hostileString.map(encode) },
  { weight: 1, arbitrary: rawSegment },
);
const wireNumber = fc.oneof(
  hostileNumber.map(String),
  fc.constantFrom("1e400", "-0", "0x10", "Infinity", "NaN", "", "1.5", "99999999999999999999"),
);
const forgedCursor = fc
  .oneof(
    fc.record({ c: fc.oneof(hostileString, hostileNumber), i: fc.oneof(hostileString, hostileNumber) }),
    fc.record({
      c: fc.constantFrom("2026", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "yesterday"),
      i: hostileString,
    }),
    hostileJson,
  )
  .map((v) => Buffer.from(JSON.stringify(v) ?? "null").toString("base64url"));

/** The query keys each listing reads; any route also gets keys it does not know. */
const QUERY_KEYS: Record<string, string[]> = {
  "GET /v1/jobs": ["state", "queue", "q", "limit", "cursor"],
  "GET /v1/jobs/:id/logs": ["after", "limit"],
  "GET /v1/jobs/:id/logs/stream": ["after"],
  "GET /v1/audit": ["actor", "action", "target", "since", "until", "cursor", "limit"],
  "GET /v1/events": ["topics"],
};
/** Whether a route reads anything but the token: an id, a body or a query. */
const takesInput = (e: Endpoint) =>
  e.url.includes(":id") || e.method !== "GET" || QUERY_KEYS[`${e.method} ${e.url}`] !== undefined;
const ALL_KEYS = [...new Set(Object.values(QUERY_KEYS).flat())];
const query = (route: string) =>
  fc.array(
    fc.tuple(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...(QUERY_KEYS[route] ?? ALL_KEYS)) },
        { weight: 1, arbitrary: wireString },
      ),
      fc.oneof(wireString, wireNumber, forgedCursor),
    ),
    { maxLength: 4 },
  );

/**
 * A mutation of a valid body: one string or number swapped for a hostile one of the same type (the
 * rest stays valid, so the value reaches the database), one field replaced by any JSON, removed or
 * added, every string made hostile, or the whole body replaced.
 */
const mutation = fc.record({
  op: fc.constantFrom(
    "text",
    "text",
    "text",
    "number",
    "number",
    "replace",
    "delete",
    "add",
    "strings",
    "whole",
  ),
  number: hostileNumber,
  at: fc.nat(),
  value: hostileJson,
  text: hostileString,
});

type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

interface Plan {
  id: { kind: "valid" } | { kind: "string"; wire: string };
  query: [string, string][];
  body: { send: boolean; m: Mutation };
  lastEventId: string | null;
}

const plan = (route: string): fc.Arbitrary<Plan> =>
  fc.record({
    id: fc.oneof(
      { weight: 3, arbitrary: fc.constant({ kind: "valid" as const }) },
      { weight: 2, arbitrary: wireString.map((wire) => ({ kind: "string" as const, wire })) },
    ),
    query: fc.oneof(fc.constant([] as [string, string][]), query(route)),
    body: fc.record({
      send: fc.oneof(
        { weight: 5, arbitrary: fc.constant(true) },
        { weight: 1, arbitrary: fc.constant(false) },
      ),
      m: mutation,
    }),
    lastEventId: fc.option(fc.oneof(wireNumber, hostileString.map(encode)), { nil: null }),
  });

function paths(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(value)) for (const [i, v] of value.entries()) paths(v, [...at, i], out);
  else if (value !== null && typeof value === "object")
    for (const [k, v] of Object.entries(value)) paths(v, [...at, k], out);
  return out;
}

function get(value: unknown, path: (string | number)[]): unknown {
  let v: any = value;
  for (const key of path) v = v?.[key];
  return v;
}

function mutate(body: unknown, m: Mutation): unknown {
  if (m.op === "whole") return m.value;
  const copy = structuredClone(body ?? {});
  if (m.op === "strings") {
    const walk = (v: unknown): unknown => {
      if (typeof v === "string") return m.text;
      if (Array.isArray(v)) return v.map(walk);
      if (v !== null && typeof v === "object")
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
      return v;
    };
    return walk(copy);
  }
  const kind = m.op === "text" ? "string" : m.op === "number" ? "number" : null;
  const all = paths(copy).filter((p) => kind === null || typeof get(copy, p) === kind);
  const path = all[m.at % Math.max(1, all.length)] ?? [];
  if (path.length === 0) return m.op === "replace" ? m.value : copy;
  let parent: any = copy;
  for (const key of path.slice(0, -1)) parent = parent[key];
  const last = path.at(-1) as string | number;
  if (m.op === "text") parent[last] = m.text;
  else if (m.op === "number") parent[last] = m.number;
  else if (m.op === "replace") parent[last] = m.value;
  else if (m.op === "delete") {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (parent !== null && typeof parent === "object" && !Array.isArray(parent))
    parent[m.text] = m.value;
  return copy;
}

// --- the suite ------------------------------------------------------------------------------------

/**
 * Endpoints where a value PostgreSQL cannot take may still reach it and be caught only by the
 * backstop in http-errors.ts (a 400 without the field's path). None: every query and body schema
 * refuses such values itself, naming the field; the backstop reached is a failure.
 */
const BACKSTOP_KNOWN = new Set<string>();
const BACKSTOP_MESSAGE = "a value in the request cannot be stored: out of range or not text";

/** Routes whose valid request is used up by succeeding once (a cancel, a finish): a fresh one per run. */
const CONSUMING = new Set([
  "POST /v1/jobs/:id/cancel",
  "POST /v1/jobs/:id/retry",
  "POST /v1/agents/:id/drain",
  "DELETE /v1/tokens/:id",
  "POST /v1/agent/jobs/:id/finish",
  "POST /v1/agent/deregister",
]);

describeWith(await pgGate(), "every endpoint against hostile input [pg]", () => {
  let t: TestApi;
  let pool: Pool;
  let endpoints: Endpoint[];
  const seen = new Map<string, Map<number, number>>();

  beforeAll(async () => {
    t = await startTestApi({
      adapter: "pg",
      config: { failureLimitPerMinute: 100_000_000, maxClaimWaitMs: 20 },
    });
    pool = new Pool(t.url, { connections: 4 });
    const defs = t.api.routes.map((r) => ({ method: r.method, url: r.url, role: r.role, route: r }));
    const known = new Set(defs.map((e) => `${e.method} ${e.url}`));
    // The rest are put on the app directly (probes, metrics, the OpenAPI document).
    const direct = declaredRoutes()
      .filter((r) => !known.has(r))
      .map((r) => {
        const [method, url] = r.split(" ") as [Endpoint["method"], string];
        return { method, url, role: "none" };
      });
    endpoints = [...defs, ...direct];
  });
  afterAll(async () => {
    await pool?.close();
    await t?.close();
    const table = [...seen].map(([k, v]) => `${k}: ${[...v].map(([s, n]) => `${s}x${n}`).join(" ")}`);
    if (process.env.FUZZ_REPORT) console.log(table.join("\n"));
  });

  it("covers every method and path declared in src/routes and app.ts, each a route the server has", async () => {
    const fuzzed = new Set(endpoints.map((e) => `${e.method} ${e.url}`));
    const declared = declaredRoutes();
    expect(declared.length).toBeGreaterThanOrEqual(28);
    expect(declared.filter((r) => !fuzzed.has(r))).toEqual([]);
    for (const e of endpoints) {
      const res = await send(e, e.url.replace(":id", "x"), undefined, null);
      expect(String(res.body?.error?.message), `${e.method} ${e.url}`).not.toMatch(/^no route/);
    }
  });

  async function send(
    e: Endpoint,
    path: string,
    body: unknown,
    lastEventId: string | null,
  ): Promise<{ status: number; body: any; stream: boolean }> {
    const token = e.role === "agent" ? t.tokens.agent : t.tokens.admin;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (lastEventId !== null) headers["last-event-id"] = lastEventId;
    let payload: string | undefined;
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const controller = new AbortController();
    const res = await pool.request({
      method: e.method,
      path,
      headers,
      body: payload,
      signal: controller.signal,
    });
    if (String(res.headers["content-type"]).startsWith("text/event-stream")) {
      controller.abort();
      await res.body.dump().catch(() => {});
      return { status: res.statusCode, body: null, stream: true };
    }
    const text = await res.body.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // metrics and probes may answer text
    }
    return { status: res.statusCode, body: parsed, stream: false };
  }

  it("no endpoint answers 5xx, and every 4xx carries a catalog code with its status", async () => {
    let total = 0;
    let fiveHundreds = 0;
    let backstops = 0;
    const failures: string[] = [];
    for (const e of endpoints) {
      const key = `${e.method} ${e.url}`;
      const counts = new Map<number, number>();
      seen.set(key, counts);
      const began = Date.now();
      const sample = async (): Promise<SampleRequest> => {
        if (!e.route) return { path: e.url }; // a direct route takes no id and no body
        try {
          return await sampleRequest(t, e.route);
        } catch {
          // A route fixtures.ts does not know yet is still fuzzed, from an empty body.
          return { path: e.url.replace(":id", "x"), body: {} };
        }
      };
      const base = await sample();
      const validId = e.url.includes(":id")
        ? base.path.split("/")[e.url.split("/").indexOf(":id")]
        : undefined;
      await fc.assert(
        fc.asyncProperty(plan(key), async (p) => {
          const s = CONSUMING.has(key) ? await sample() : base;
          const id =
            p.id.kind === "valid"
              ? (s.path.split("/")[e.url.split("/").indexOf(":id")] ?? validId ?? "x")
              : p.id.wire;
          let path = e.url.replace(":id", id);
          const given = s.path.includes("?") ? s.path.slice(s.path.indexOf("?") + 1) : "";
          const q = p.query.map(([k, v]) => `${encode(k)}=${v}`).join("&");
          if (q !== "" || given !== "") path += `?${q !== "" ? q : given}`;
          const body = e.method === "GET" || !p.body.send ? undefined : mutate(s.body, p.body.m);
          const res = await send(e, path, body, p.lastEventId);
          total++;
          counts.set(res.status, (counts.get(res.status) ?? 0) + 1);
          const what = `${e.method} ${path} ${JSON.stringify(body)?.slice(0, 300)} -> ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`;
          // Collected rather than thrown, so one run names every endpoint that fails.
          if (res.status >= 500) {
            fiveHundreds++;
            failures.push(what);
          } else if (res.status >= 400) {
            const code = res.body?.error?.code as ErrorCode;
            if (!ERROR_CODES.includes(code) || statusOf(code) !== res.status)
              failures.push(`not in the catalog: ${what}`);
            if (res.body?.error?.message === BACKSTOP_MESSAGE) {
              backstops++;
              if (!BACKSTOP_KNOWN.has(key)) failures.push(`reached PostgreSQL unvalidated: ${what}`);
            }
          }
        }),
        { numRuns: takesInput(e) ? RUNS : Math.ceil(RUNS / 4) },
      );
      counts.set(-1, Date.now() - began); // -1: milliseconds spent, for FUZZ_REPORT
    }
    console.log(
      `fuzzed ${endpoints.length} endpoints, ${RUNS} runs each (a quarter for those that read no input) = ` +
        `${total} requests: ${fiveHundreds} 5xx, ` +
        `${backstops} caught by the backstop`,
    );
    expect(failures.slice(0, 20)).toEqual([]);
  }, 300_000);
});
