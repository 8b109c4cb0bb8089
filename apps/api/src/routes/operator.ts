import {
  AgentDrainBody,
  AuditVerifyBody,
  FleetUpdateBody,
  parseOrThrow,
  refuseUnstorable,
  SkiffError,
  Timestamp,
  TokenCreateBody,
} from "@skiff/protocol";
import { z } from "zod";
import { hashToken, newTokenSecret } from "../auth.ts";
import { type ApiContext, actorOf, type RouteDef } from "../context.ts";
import { bodyOf, idParam, Limit } from "./params.ts";

const AuditQuery = z
  .strictObject({
    actor: z.string().max(200).optional(),
    action: z.string().max(100).optional(),
    target: z.string().max(200).optional(),
    since: Timestamp.optional(),
    until: Timestamp.optional(),
    cursor: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
    limit: Limit(1000, 100),
  })
  .superRefine(refuseUnstorable);

const HistoryQuery = z.strictObject({
  bucketSeconds: z.coerce.number().int().min(1).max(3600).default(5),
  buckets: z.coerce.number().int().min(1).max(720).default(60),
});

export function operatorRoutes(ctx: ApiContext): RouteDef[] {
  const { store } = ctx;
  return [
    {
      method: "GET",
      url: "/v1/whoami",
      role: "viewer",
      async handler(_req, _reply, who) {
        return { name: who.name, role: who.role };
      },
    },
    {
      method: "GET",
      url: "/v1/agents",
      role: "viewer",
      async handler() {
        return { items: await store.listAgents() };
      },
    },
    {
      method: "GET",
      url: "/v1/agents/:id",
      role: "viewer",
      async handler(req) {
        const id = idParam(req);
        const agent = await store.getAgent(id);
        if (!agent) throw new SkiffError("not_found", `no agent ${id}`);
        return { ...agent, recentHeartbeats: ctx.heartbeats.recent(id) };
      },
    },
    {
      method: "POST",
      url: "/v1/agents/:id/drain",
      role: "operator",
      mutating: true,
      async handler(req, _reply, who) {
        const id = idParam(req);
        const body = parseOrThrow(AgentDrainBody, bodyOf(req), "drain body");
        const { value: agent } = await store.drainAgent(id, body.reason, actorOf(req, who));
        if (!agent) throw new SkiffError("not_found", `no agent ${id}`);
        return agent;
      },
    },
    {
      method: "GET",
      url: "/v1/fleet",
      role: "viewer",
      async handler() {
        return fleetView(ctx);
      },
    },
    {
      method: "PUT",
      url: "/v1/fleet",
      role: "operator",
      mutating: true,
      async handler(req, _reply, who) {
        const body = parseOrThrow(FleetUpdateBody, req.body, "fleet body");
        await store.updateFleet(body, actorOf(req, who));
        return fleetView(ctx);
      },
    },
    {
      method: "GET",
      url: "/v1/audit",
      role: "operator",
      async handler(req) {
        const q = parseOrThrow(AuditQuery, req.query, "query");
        const items = await store.listAudit({
          actor: q.actor,
          action: q.action,
          target: q.target,
          since: q.since,
          until: q.until,
          beforeSeq: q.cursor,
          limit: q.limit,
        });
        const last = items.at(-1);
        return { items, nextCursor: items.length === q.limit && last ? String(last.seq) : null };
      },
    },
    {
      method: "GET",
      url: "/v1/audit/verify",
      role: "operator",
      async handler() {
        return store.verifyAudit();
      },
    },
    {
      method: "POST",
      url: "/v1/audit/verify",
      role: "operator",
      async handler(req) {
        const body = parseOrThrow(AuditVerifyBody, req.body, "verify body");
        return store.verifyAudit(body.checkpoints);
      },
    },
    {
      method: "GET",
      url: "/v1/stats/history",
      role: "viewer",
      async handler(req) {
        const query = parseOrThrow(HistoryQuery, req.query, "query");
        return {
          bucketSeconds: query.bucketSeconds,
          buckets: await store.jobHistory(query.bucketSeconds, query.buckets),
        };
      },
    },
    {
      method: "GET",
      url: "/v1/stats/jobs",
      role: "viewer",
      async handler() {
        const [states, queued] = await Promise.all([store.countJobsByState(), store.countQueuedByQueue()]);
        return { states, queued };
      },
    },
    {
      method: "GET",
      url: "/v1/audit/checkpoints",
      role: "operator",
      async handler() {
        return { items: ctx.checkpoints.list(), sealed: ctx.checkpoints.sealed };
      },
    },
    {
      method: "POST",
      url: "/v1/tokens",
      role: "admin",
      mutating: true,
      async handler(req, reply, who) {
        const body = parseOrThrow(TokenCreateBody, req.body, "token body");
        const secret = newTokenSecret();
        const { value: token } = await store.createToken(
          { ...body, hash: hashToken(secret) },
          actorOf(req, who),
        );
        reply.code(201);
        return { id: token.id, name: token.name, role: token.role, scope: token.scope, token: secret };
      },
    },
    {
      method: "GET",
      url: "/v1/tokens",
      role: "admin",
      async handler() {
        return { items: await store.listTokens() };
      },
    },
    {
      method: "DELETE",
      url: "/v1/tokens/:id",
      role: "admin",
      mutating: true,
      async handler(req, _reply, who) {
        const id = idParam(req);
        const { value: token } = await store.revokeToken(id, actorOf(req, who));
        if (!token) throw new SkiffError("not_found", `no token ${id}`);
        await ctx.principals.revoked(id);
        return token;
      },
    },
  ];
}

async function fleetView(ctx: ApiContext) {
  const [settings, leader, decisions, counts] = await Promise.all([
    ctx.store.getFleet(),
    ctx.store.getLeadership(),
    ctx.store.recentDecisions(20),
    ctx.store.countAgents(),
  ]);
  const online = (counts.idle ?? 0) + (counts.busy ?? 0) + (counts.draining ?? 0) + (counts.degraded ?? 0);
  // The workers the leader's scaler runs; agents started by hand beside the fleet are not among
  // them. With no controller's count yet, every online agent, as before.
  const actual = leader.holder && leader.workers !== null ? leader.workers : online;
  const latest = decisions[0];
  const desired = settings.mode === "manual" ? settings.replicas : (latest?.desired ?? settings.min);
  const scaler = typeof latest?.inputs.scaler === "string" ? latest.inputs.scaler : null;
  return {
    mode: settings.mode,
    desired,
    actual,
    online,
    replicas: settings.replicas,
    min: settings.min,
    max: settings.max,
    warm: settings.warm,
    scaler,
    leader: leader.holder ? { holder: leader.holder, epoch: leader.epoch, since: leader.acquiredAt } : null,
    updatedAt: settings.updatedAt,
    updatedBy: settings.updatedBy,
    decisions,
  };
}
