import type { Bus } from "@skiff/bus";
import type { Role } from "@skiff/protocol";
import type { Store } from "@skiff/store";
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from "fastify";
import type { Principal } from "./auth.ts";
import type { AuditCheckpoints } from "./checkpoints.ts";
import type { ApiConfig } from "./config.ts";
import type { EventFeed } from "./event-log.ts";
import type { HeartbeatLog } from "./heartbeats.ts";
import type { LogTails } from "./log-tail.ts";
import type { Metrics } from "./metrics.ts";
import type { PrincipalCache } from "./principals.ts";
import type { SseRegistry } from "./sse.ts";
import type { ClaimWaiters } from "./waiters.ts";

/** Everything a route needs, built once by `buildApi`. */
export interface ApiContext {
  config: ApiConfig;
  store: Store;
  bus: Bus;
  log: FastifyBaseLogger;
  metrics: Metrics;
  waiters: ClaimWaiters;
  sse: SseRegistry;
  /** One shared reader per followed job's log on this replica. */
  logTails: LogTails;
  checkpoints: AuditCheckpoints;
  heartbeats: HeartbeatLog;
  state: { shuttingDown: boolean };
  principals: PrincipalCache;
  /** The event log as this replica relays it to `/v1/events`. */
  events: EventFeed;
}

export type RouteRole = Role | "none";

export interface RouteDef {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  role: RouteRole;
  /** Whether the route changes state (for the matrix test and the docs). */
  mutating?: boolean;
  handler(req: FastifyRequest, reply: FastifyReply, who: Principal): Promise<unknown>;
}

/** The audit identity of a request. */
export function actorOf(req: FastifyRequest, who: Principal) {
  return { actor: who.name, role: who.role, requestId: String(req.id), sourceIp: req.ip };
}
