import {
  API_OPERATIONS,
  API_SCHEMAS,
  ApiErrorBody,
  type OpenApiRoute,
  operationKey,
  undocumentedRoutes,
} from "@skiff/protocol";
import { describeWith, pgGate } from "@skiff/testkit";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOpenApi } from "../src/routes/openapi.ts";
import { sampleRequest } from "./fixtures.ts";
import { hello, openSse, readSse, type SseEvent, startTestApi, type TestApi } from "./harness.ts";

type Json = Record<string, any>;

/**
 * Every method and path the Fastify instance serves, read from its own route tree (HEAD is the
 * automatic twin of each GET). This is what the server really answers, whether a route came from
 * the guarded table (`routes`) or was registered on the app directly.
 */
function servedRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^([│ ]*)[├└]── (\S+)(?: \(([^)]*)\))?/.exec(line);
    if (!m) continue;
    const depth = (m[1] ?? "").length / 4;
    const path = (stack[depth - 1] ?? "") + m[2];
    stack.length = depth;
    stack.push(path);
    for (const method of m[3]?.split(", ") ?? []) if (method !== "HEAD") out.push(`${method} ${path}`);
  }
  return out.sort();
}

/** The operations of the served document, as `METHOD /path/:param`. */
function documented(doc: Json): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json)) {
      out.set(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`, op as Json);
    }
  }
  return out;
}

/**
 * Fields of `value` that the document's JSON Schema does not mention: zod's `object` lets unknown
 * keys through, so parsing alone would not notice an answer growing a field the document lacks.
 */
function undocumentedFields(doc: Json, schema: Json, value: unknown, at = "$"): string[] {
  const resolved: Json = schema.$ref
    ? doc.components.schemas[String(schema.$ref).replace("#/components/schemas/", "")]
    : schema;
  if (!resolved) return [`${at}: ${schema.$ref} does not resolve`];
  const branches = (resolved.anyOf ?? resolved.oneOf) as Json[] | undefined;
  if (branches) {
    const tries = branches.map((b) => undocumentedFields(doc, b, value, at));
    return tries.find((t) => t.length === 0) ?? tries.sort((a, b) => a.length - b.length)[0] ?? [];
  }
  if (Array.isArray(value)) {
    return resolved.items
      ? value.flatMap((v, i) => undocumentedFields(doc, resolved.items, v, `${at}[${i}]`))
      : [];
  }
  if (value === null || typeof value !== "object") return [];
  const out: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    const prop = resolved.properties?.[key];
    if (prop) out.push(...undocumentedFields(doc, prop, v, `${at}.${key}`));
    else if (resolved.additionalProperties && typeof resolved.additionalProperties === "object")
      out.push(...undocumentedFields(doc, resolved.additionalProperties, v, `${at}.${key}`));
    else if (!resolved.additionalProperties && resolved.properties) out.push(`${at}.${key}`);
  }
  return out;
}

function allRefs(node: unknown, into: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) for (const n of node) allRefs(n, into);
  else if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") into.add(v);
      else allRefs(v, into);
    }
  }
  return into;
}

/** A value a documented query parameter accepts, from its schema. */
function exampleFor(schema: Json): string {
  if (schema.default !== undefined) return String(schema.default);
  if (schema.enum) return String(schema.enum[0]);
  if (schema.format === "date-time") return new Date().toISOString();
  if (schema.type === "integer") return String(schema.minimum ?? (schema.exclusiveMinimum ?? 0) + 1);
  return "x";
}

describe("the OpenAPI builder", () => {
  it("leaves out a route that has no row, and names it, so the served document cannot pass for complete", () => {
    const routes: OpenApiRoute[] = [
      { method: "GET", url: "/v1/jobs", role: "viewer" },
      { method: "POST", url: "/v1/jobs/:id/pause", role: "operator" },
    ];
    expect(undocumentedRoutes(routes)).toEqual(["POST /v1/jobs/:id/pause"]);
    const paths = buildOpenApi(routes, { version: "test" }).paths as Json;
    expect(Object.keys(paths)).toEqual(["/v1/jobs"]);
  });
});

describeWith(await pgGate(), "GET /v1/openapi.json against the running API [pg]", () => {
  let t: TestApi;
  let doc: Json;
  let ops: Map<string, Json>;
  const tokenFor = (role: string) =>
    role === "none" ? null : t.tokens[role as "viewer" | "operator" | "admin" | "agent"];

  beforeAll(async () => {
    t = await startTestApi({ adapter: "pg", config: { failureLimitPerMinute: 1_000_000 } });
    const res = await t.call("GET", "/v1/openapi.json", { token: null });
    expect(res.status).toBe(200);
    doc = res.body;
    ops = documented(doc);
  });
  afterAll(async () => {
    await t?.close();
  });

  it("is an OpenAPI 3.1 document served without a token, every reference resolving", () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.version).toBe("0.1.0");
    const ids = [...ops.values()].map((op) => op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const missing = [...allRefs(doc)].filter(
      (r) => !doc.components.schemas[r.replace("#/components/schemas/", "")],
    );
    expect(missing).toEqual([]);
  });

  it("documents exactly the routes the server registers: a route added without an entry fails here", () => {
    const served = servedRoutes(t.api.app);
    // The parse of the route tree is itself checked: every guarded route must be in it.
    for (const r of t.api.routes) expect(served).toContain(operationKey(r));
    expect(undocumentedRoutes(t.api.routes)).toEqual([]);
    const table = Object.keys(API_OPERATIONS);
    expect({
      "served but not in the document (add a row to API_OPERATIONS)": served.filter((k) => !ops.has(k)),
      "in the document but not served": [...ops.keys()].filter((k) => !served.includes(k)),
      "rows of API_OPERATIONS for no route": table.filter((k) => !served.includes(k)),
    }).toEqual({
      "served but not in the document (add a row to API_OPERATIONS)": [],
      "in the document but not served": [],
      "rows of API_OPERATIONS for no route": [],
    });
  });

  it("gives each guarded route the role the server enforces, and its error answers the error schema", async () => {
    for (const route of t.api.routes) {
      const op = ops.get(operationKey(route));
      expect(op?.["x-skiff-role"], operationKey(route)).toBe(route.role);
      expect(op?.security).toEqual([{ bearer: [] }]);
      const path = route.url.replace(/:(\w+)/g, "nope");
      const res = await t.call(route.method, path, {
        token: null,
        body: route.method === "GET" ? undefined : {},
      });
      expect(res.status, operationKey(route)).toBe(401);
      expect(ApiErrorBody.safeParse(res.body).success).toBe(true);
      expect(op?.responses["401"].content["application/json"].schema).toEqual({
        $ref: "#/components/schemas/Error",
      });
      expect(op?.responses["403"]).toBeDefined();
    }
    for (const key of ["GET /healthz", "GET /readyz", "GET /v1/openapi.json", "GET /metrics"]) {
      expect(ops.get(key)?.["x-skiff-role"], key).toBe("none");
    }
  });

  it("describes what each route really takes and answers: a tour of every route with the least role", async () => {
    const problems: string[] = [];
    for (const route of t.api.routes) {
      const key = operationKey(route);
      const row = API_OPERATIONS[key];
      const op = ops.get(key);
      if (!row || !op) throw new Error(`${key} is not documented`);
      const sample = await sampleRequest(t, route);
      if (row.body) {
        const parsed = API_SCHEMAS[row.body]?.safeParse(sample.body ?? {});
        if (!parsed?.success) problems.push(`${key}: a valid request does not match ${row.body}`);
      } else if (sample.body !== undefined) problems.push(`${key}: takes a body the document does not show`);
      const token = tokenFor(route.role) ?? "";
      if (row.events) {
        const last = key === "GET /v1/events" ? "ready" : "end";
        const events = await readSse(`${t.url}${sample.path}`, token, (es) =>
          es.some((e) => e.event === last),
        );
        problems.push(...eventProblems(key, row.events, events));
        continue;
      }
      const res = await t.call(route.method, sample.path, { token, body: sample.body });
      if (res.status !== row.ok.status)
        problems.push(`${key}: answered ${res.status}, documented ${row.ok.status}`);
      const schemaName = row.ok.schema;
      if (!schemaName) continue;
      const parsed = API_SCHEMAS[schemaName]?.safeParse(res.body);
      if (!parsed?.success)
        problems.push(`${key}: answer does not match ${schemaName}: ${parsed?.error?.message}`);
      const schema = op.responses[row.ok.status].content["application/json"].schema;
      for (const field of undocumentedFields(doc, schema, res.body))
        problems.push(`${key}: undocumented ${field}`);
    }
    expect(problems).toEqual([]);
  });

  it("describes the probes and the events of /v1/events as they are sent", async () => {
    for (const [path, name] of [
      ["/healthz", "HealthResponse"],
      ["/readyz", "ReadyResponse"],
    ] as const) {
      const res = await t.call("GET", path, { token: null });
      expect(API_SCHEMAS[name]?.safeParse(res.body).success, path).toBe(true);
      expect(undocumentedFields(doc, { $ref: `#/components/schemas/${name}` }, res.body)).toEqual([]);
    }
    const metrics = await fetch(`${t.url}/metrics`);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    await metrics.text();

    const stream = await openSse(`${t.url}/v1/events`, t.tokens.operator);
    try {
      await stream.waitUntil("ready", (c) => c.events.some((e) => e.event === "ready"));
      await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("openapi") });
      const wanted = ["job.created", "job.state", "audit.appended"];
      await stream.waitUntil("the job's events", (c) =>
        wanted.every((w) => c.events.some((e) => e.event === w)),
      );
      const row = API_OPERATIONS["GET /v1/events"];
      expect(eventProblems("GET /v1/events", row?.events ?? {}, stream.events)).toEqual([]);
    } finally {
      stream.close();
    }
  });

  function eventProblems(
    key: string,
    documentedEvents: Record<string, string>,
    events: SseEvent[],
  ): string[] {
    const out: string[] = [];
    for (const e of events) {
      const name = documentedEvents[e.event];
      if (!name) {
        out.push(`${key}: undocumented event ${e.event}`);
        continue;
      }
      if (!API_SCHEMAS[name]?.safeParse(e.data).success)
        out.push(`${key}: event ${e.event} does not match ${name}`);
      for (const f of undocumentedFields(doc, { $ref: `#/components/schemas/${name}` }, e.data))
        out.push(`${key}: event ${e.event}: undocumented ${f}`);
    }
    return out;
  }

  it("documents exactly the query parameters each route accepts", async () => {
    const problems: string[] = [];
    for (const route of t.api.routes) {
      const op = ops.get(operationKey(route));
      const params = ((op?.parameters ?? []) as Json[]).filter((p) => p.in === "query");
      if (params.length === 0) continue;
      const base = route.url.replace(/:(\w+)/g, "nope");
      const issuesAt = async (query: string) => {
        const controller = new AbortController();
        const res = await fetch(`${t.url}${base}?${query}`, {
          headers: { authorization: `Bearer ${tokenFor(route.role)}` },
          signal: controller.signal,
        });
        const body: Json | null = res.status === 400 ? ((await res.json()) as Json) : null;
        controller.abort();
        return ((body?.error?.details?.issues ?? []) as { path: string; message: string }[])
          .filter((i) => i.message === "unknown field")
          .map((i) => i.path);
      };
      // The route refuses what it does not know, so the check below can see a missing parameter.
      expect(await issuesAt("nonesuch=1"), operationKey(route)).toEqual(["nonesuch"]);
      for (const p of params) {
        const unknown = await issuesAt(`${p.name}=${encodeURIComponent(exampleFor(p.schema))}`);
        if (unknown.length > 0) problems.push(`${operationKey(route)}: ${p.name} is documented but refused`);
      }
    }
    expect(problems).toEqual([]);
  });
});
