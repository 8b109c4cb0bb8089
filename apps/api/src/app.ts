import { randomUUID } from "node:crypto";
import type { Bus } from "@skiff/bus";
import { roleAllows, SkiffError } from "@skiff/protocol";
import type { Store } from "@skiff/store";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { hashTokenCached, type Principal } from "./auth.ts";
import { AuditCheckpoints } from "./checkpoints.ts";
import { ApiConfig, type ApiConfigInput } from "./config.ts";
import type { ApiContext, RouteDef } from "./context.ts";
import { EventFeed } from "./event-log.ts";
import { HeartbeatLog } from "./heartbeats.ts";
import { toSkiffError } from "./http-errors.ts";
import { levelOf, quietLevel } from "./log-level.ts";
import { LogTails } from "./log-tail.ts";
import { createMetrics } from "./metrics.ts";
import { PrincipalCache } from "./principals.ts";
import { FailureLimiter } from "./ratelimit.ts";
import { Reaper } from "./reaper.ts";
import { agentProtocolRoutes } from "./routes/agent-protocol.ts";
import { registerHealth } from "./routes/health.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { registerOpenApi } from "./routes/openapi.ts";
import { operatorRoutes } from "./routes/operator.ts";
import { streamRoutes } from "./routes/streams.ts";
import { SseRegistry } from "./sse.ts";
import { ClaimWaiters } from "./waiters.ts";

export interface ApiDeps {
  config: ApiConfigInput;
  store: Store;
  bus: Bus;
  /** A pino logger (`pino({ level: "silent" })` in tests). */
  logger: FastifyBaseLogger;
}

export interface Api {
  app: FastifyInstance;
  ctx: ApiContext;
  routes: RouteDef[];
  reaper: Reaper;
  /** Listens and starts the reaper; returns the base URL. */
  listen(): Promise<string>;
  /** Stops taking work: readyz 503, SSE streams ended, in-flight requests finished, up to the deadline. */
  shutdown(): Promise<void>;
}

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

const FAILURE_STATUSES = new Set([400, 401, 403, 413, 415]);

/** Builds the API without listening, so tests can drive it in-process with `app.inject` or a port. */
export function buildApi(deps: ApiDeps): Api {
  const config = Object.freeze(ApiConfig.parse(deps.config));
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: config.bodyLimitBytes,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    return503OnClosing: true,
    // A path the router cannot decode, or a segment too long, is refused before any hook runs:
    // answer it from the catalog like every other refusal.
    frameworkErrors: (err, req, reply) => {
      const e = toSkiffError(err);
      (reply as unknown as FastifyReply)
        .code(e.status)
        .header("x-request-id", String(req.id))
        .send(e.toBody());
    },
    forceCloseConnections: "idle",
  });
  const { store, bus } = deps;
  const waiters = new ClaimWaiters(bus);
  const metrics = createMetrics(store, () => waiters.size);
  const events = new EventFeed(store, app.log, { retentionSeconds: config.eventRetentionSeconds });
  const limiter = new FailureLimiter(config.failureLimitPerMinute);
  const state = { shuttingDown: false };
  const principals = new PrincipalCache(store, bus);

  const ctx: ApiContext = {
    config,
    store,
    bus,
    log: app.log,
    metrics,
    waiters,
    sse: new SseRegistry(),
    logTails: new LogTails(store),
    checkpoints: new AuditCheckpoints(
      store,
      app.log,
      config.auditCheckpointSeconds * 1000,
      config.auditCheckpointFile ?? null,
    ),
    heartbeats: new HeartbeatLog(),
    state,
    principals,
    events,
  };
  // Recent heartbeats per agent, for `GET /v1/agents/:id`: they arrive like every other event.
  const stopEvents = events.listen((batch) => {
    for (const e of batch) if (e.name === "agent.heartbeat") ctx.heartbeats.add(e.event.payload as never);
  });

  // Failures are counted per presented token, and 401s also per address; probes and metrics, which
  // need no token, are never limited.
  const tokenKey = (req: FastifyRequest) => {
    const auth = req.headers.authorization;
    // Stryker disable next-line MethodExpression: how much of the hash names the token only sizes the key
    return auth ? `t:${hashTokenCached(auth).slice(0, 32)}` : null;
  };

  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", String(req.id));
    const key = tokenKey(req);
    const wait = key ? limiter.retryAfter(key) : 0;
    if (wait > 0) {
      reply.header("retry-after", String(wait));
      throw new SkiffError("rate_limited", `too many failed requests; retry in ${wait} s`);
    }
  });
  app.addHook("onResponse", async (req, reply) => {
    if (FAILURE_STATUSES.has(reply.statusCode)) {
      const key = tokenKey(req);
      // Stryker disable next-line ConditionalExpression: a null key would be counted under "null", which is never checked
      if (key) limiter.fail(key);
      // Unknown tokens also count against the address, so rotating made-up tokens does not dodge the
      // limit; a valid token from the same address is judged by its own record.
      if (reply.statusCode === 401) limiter.fail(`ip:${req.ip}`);
    }
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe(
      { method: req.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  app.setErrorHandler(async (err, req, reply) => {
    const e = toSkiffError(err);
    const retry = (e.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if ((e.code === "rate_limited" || e.code === "not_ready") && retry)
      reply.header("retry-after", String(retry));
    // req.log carries reqId already: repeating it would print the key twice.
    if (e.status >= 500) req.log.error({ err }, "request failed");
    else req.log.info({ code: e.code, url: req.url }, e.message);
    reply.code(e.status).header("x-request-id", String(req.id)).send(e.toBody());
  });
  app.setNotFoundHandler(async (req, reply) => {
    reply
      .code(404)
      .send(new SkiffError("not_found", `no route ${req.method} ${req.url.split("?")[0]}`).toBody());
  });

  registerHealth(app, ctx);
  app.get("/metrics", async (req, reply) => {
    if (!config.metricsPublic) await guard(req, "viewer", "GET /metrics");
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  /** Authenticates and authorises; every refusal is audited with who tried what. */
  async function guard(req: FastifyRequest, role: RouteDef["role"], action: string): Promise<Principal> {
    const { who, fresh } = await principals.resolve(req.headers.authorization);
    if (!who) {
      const wait = limiter.retryAfter(`ip:${req.ip}`);
      if (wait > 0) {
        throw new SkiffError("rate_limited", `too many failed requests from ${req.ip}; retry in ${wait} s`, {
          details: { retryAfterSeconds: wait },
        });
      }
    }
    const deny = async (principal: Principal | null, code: "unauthorized" | "forbidden", message: string) => {
      await store
        .appendAudit({
          actor: principal?.name ?? "anonymous",
          role: principal?.role ?? "none",
          action,
          target: req.url.split("?")[0] ?? req.url,
          outcome: "denied",
          requestId: String(req.id),
          sourceIp: req.ip,
          details: { status: code === "unauthorized" ? 401 : 403, required: role },
        })
        .catch((err) => {
          req.log.error({ err }, "could not audit a denied request");
          return null;
        });
      throw new SkiffError(code, message);
    };
    if (!who) {
      return deny(
        null,
        "unauthorized",
        req.headers.authorization
          ? "the token is unknown or revoked"
          : "no token: send `Authorization: Bearer <token>` (the admin token is in $SKIFF_HOME/admin.token)",
      );
    }
    if (role !== "none" && !roleAllows(who.role, role)) {
      return deny(who, "forbidden", `this needs the ${role} role; your token "${who.name}" has ${who.role}`);
    }
    if (fresh) void store.touchToken(who.tokenId).catch(() => {});
    return who;
  }

  const quiet = quietLevel(app.log.level);
  const routes = [
    ...jobRoutes(ctx),
    ...agentProtocolRoutes(ctx),
    ...operatorRoutes(ctx),
    ...streamRoutes(ctx, events),
  ];
  for (const route of routes) {
    const action = `${route.method} ${route.url}`;
    app.route({
      method: route.method,
      url: route.url,
      // Agents call many times a second across a fleet; their requests are logged only when they fail.
      logLevel: route.role === "agent" ? quiet : levelOf(app.log.level),
      handler: async (req, reply) => {
        const who = await guard(req, route.role, action);
        req.principal = who;
        return route.handler(req, reply, who);
      },
    });
  }
  registerOpenApi(app, routes, config);

  const reaper = new Reaper(ctx);

  return {
    app,
    ctx,
    routes,
    reaper,
    async listen() {
      const address = await app.listen({ host: config.host, port: config.port });
      reaper.start();
      ctx.checkpoints.start();
      return address;
    },
    async shutdown() {
      state.shuttingDown = true;
      await reaper.stop();
      await ctx.checkpoints.stop();
      ctx.waiters.close();
      ctx.sse.closeAll();
      stopEvents();
      await events.stop();
      principals.close();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          app.log.warn(
            { deadlineMs: config.shutdownDeadlineMs },
            "shutdown deadline reached; closing connections",
          );
          app.server.closeAllConnections();
          resolve();
        }, config.shutdownDeadlineMs);
        timer.unref();
      });
      await Promise.race([app.close(), deadline]);
      clearTimeout(timer);
    },
  };
}
