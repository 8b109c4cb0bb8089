import {
  API_OPERATIONS,
  ERROR_CATALOG,
  ERROR_CODES,
  type ErrorCode,
  NetworkMode,
  type OpenApiRoute,
  type OperationDoc,
  operationKey,
  REQUEST_SCHEMAS,
  RESPONSE_SCHEMAS,
} from "@skiff/protocol";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { ApiConfig } from "../config.ts";
import type { RouteDef } from "../context.ts";

/** The routes `buildApi` registers outside the guarded table: probes, metrics and this document. */
function bareRoutes(config: ApiConfig): OpenApiRoute[] {
  return [
    { method: "GET", url: "/healthz", role: "none" },
    { method: "GET", url: "/readyz", role: "none" },
    { method: "GET", url: "/metrics", role: config.metricsPublic ? "none" : "viewer" },
    { method: "GET", url: "/v1/openapi.json", role: "none" },
  ];
}

/**
 * `GET /v1/openapi.json`, no token needed: the OpenAPI 3.1 document of every route, with the role
 * each one enforces here. Built on the first request (it takes some tens of milliseconds), then kept.
 */
export function registerOpenApi(app: FastifyInstance, routes: readonly RouteDef[], config: ApiConfig): void {
  let document: object | null = null;
  app.get("/v1/openapi.json", async () => {
    document ??= buildOpenApi([...bareRoutes(config), ...routes], { version: config.version });
    return document;
  });
}

type Json = Record<string, unknown>;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** `NetworkMode` turns YAML 1.1 booleans into on/off; the server always sends the string. */
const override = (ctx: { zodSchema: unknown; jsonSchema: Json }) => {
  if (ctx.zodSchema !== NetworkMode) return;
  for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
  Object.assign(ctx.jsonSchema, { type: "string", enum: ["on", "off"] });
};

function components(): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [io, schemas] of [
    ["output", RESPONSE_SCHEMAS],
    ["input", REQUEST_SCHEMAS as Record<string, z.ZodType>],
  ] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
    const rendered = z.toJSONSchema(registry, {
      io,
      target: "draft-2020-12",
      unrepresentable: "any",
      uri: (id) => `#/components/schemas/${id}`,
      ...(io === "output" ? { override } : {}),
    });
    for (const [id, schema] of Object.entries(rendered.schemas)) {
      const { $schema: _s, $id: _i, ...rest } = schema as Json;
      out[id] = rest;
    }
  }
  return out;
}

function roleText(role: OpenApiRoute["role"]): string {
  if (role === "none") return "No token needed.";
  if (role === "agent") return "Role `agent`: an agent token, or the agent's own credential.";
  const ranks = ["viewer", "operator", "admin"];
  const allowed = ranks.slice(ranks.indexOf(role)).map((r) => `\`${r}\``);
  return `Role ${allowed.length > 1 ? `${allowed.slice(0, -1).join(", ")} or ${allowed.at(-1)}` : allowed[0]}.`;
}

/** The catalog errors a route can answer with: those of its kind, and its own. */
function errorsOf(route: OpenApiRoute, doc: OperationDoc): ErrorCode[] {
  const codes = new Set<ErrorCode>(doc.errors ?? []);
  if (route.role !== "none")
    for (const c of ["unauthorized", "forbidden", "rate_limited"] as const) codes.add(c);
  if (doc.body)
    for (const c of ["invalid_input", "invalid_json", "unsupported_media_type", "payload_too_large"] as const)
      codes.add(c);
  if (doc.query || route.url.includes("/:")) codes.add("invalid_input");
  if (route.url.includes("/:")) codes.add("not_found");
  if (route.role !== "none" || route.url.startsWith("/v1/")) codes.add("internal");
  return ERROR_CODES.filter((c) => codes.has(c));
}

function operation(route: OpenApiRoute, doc: OperationDoc): Json {
  const parameters: Json[] = [];
  for (const name of route.url.match(/:(\w+)/g) ?? []) {
    parameters.push({
      name: name.slice(1),
      in: "path",
      required: true,
      schema: { type: "string", minLength: 1, maxLength: 100 },
    });
  }
  if (doc.query) {
    const schema = z.toJSONSchema(doc.query, { io: "input", target: "draft-2020-12" }) as Json;
    const required = new Set((schema.required as string[] | undefined) ?? []);
    for (const [name, prop] of Object.entries(schema.properties as Record<string, Json>)) {
      const { description, ...rest } = prop;
      parameters.push({
        name,
        in: "query",
        required: required.has(name),
        schema: rest,
        ...(description ? { description } : {}),
      });
    }
  }
  if (doc.events) {
    parameters.push({
      name: "Last-Event-ID",
      in: "header",
      required: false,
      schema: { type: "string", pattern: "^\\d+$" },
      description: "resume after this event id",
    });
  }
  const responses: Json = {};
  const { status, schema, text } = doc.ok;
  if (doc.events) {
    responses[status] = {
      description: `A stream of events: ${Object.keys(doc.events)
        .map((e) => `\`${e}\``)
        .join(", ")}.`,
      content: {
        "text/event-stream": {
          schema: { type: "string" },
          "x-skiff-events": Object.fromEntries(Object.entries(doc.events).map(([e, s]) => [e, ref(s)])),
        },
      },
    };
  } else if (schema) {
    responses[status] = { description: "OK", content: { "application/json": { schema: ref(schema) } } };
  } else {
    responses[status] = {
      description: "OK",
      content: {
        [text ?? "application/json"]: {
          schema: text === "text/plain" ? { type: "string" } : { type: "object" },
        },
      },
    };
  }
  for (const [code, name] of Object.entries(doc.also ?? {})) {
    responses[code] = { description: "See the body", content: { "application/json": { schema: ref(name) } } };
  }
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorsOf(route, doc)) {
    const s = ERROR_CATALOG[code].status;
    byStatus.set(s, [...(byStatus.get(s) ?? []), code]);
  }
  for (const [s, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[s] = {
      description: codes.map((c) => `\`${c}\`: ${ERROR_CATALOG[c].summary}`).join(" "),
      content: { "application/json": { schema: ref("Error") } },
      "x-skiff-error-codes": codes,
    };
  }
  return {
    operationId: doc.id,
    tags: [doc.tag],
    summary: doc.summary,
    description: roleText(route.role),
    "x-skiff-role": route.role,
    security: route.role === "none" ? [] : [{ bearer: [] }],
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(doc.body
      ? {
          requestBody: {
            required: doc.body !== "JobRetryBody",
            content: { "application/json": { schema: ref(doc.body) } },
          },
        }
      : {}),
    responses,
  };
}

/**
 * The OpenAPI 3.1 document of the routes given (those the server registered, with the roles it
 * enforces), from the zod schemas of `@skiff/protocol` and its `API_OPERATIONS` table. Routes with
 * no row there are left out; `undocumentedRoutes` names them, and the drift test fails on them.
 */
export function buildOpenApi(routes: readonly OpenApiRoute[], info: { version: string }): Json {
  const paths: Record<string, Json> = {};
  for (const route of routes) {
    const doc = API_OPERATIONS[operationKey(route)];
    if (!doc) continue;
    const path = route.url.replace(/:(\w+)/g, "{$1}");
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation(route, doc) };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Skiff API",
      version: info.version,
      description: "The HTTP API of a Skiff control stack. docs/design.md §3 explains it in prose.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    paths,
    components: {
      schemas: components(),
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "`Authorization: Bearer <token>`" },
      },
    },
  };
}
