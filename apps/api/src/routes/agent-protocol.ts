import {
  AgentClaimBody,
  type AgentCommand,
  AgentDeregisterBody,
  AgentEventsBody,
  AgentFinishBody,
  AgentHeartbeatBody,
  AgentRegisterBody,
  parseOrThrow,
  queuesOf,
  SkiffError,
} from "@skiff/protocol";
import type { AgentLease } from "@skiff/store";
import type { FastifyRequest } from "fastify";
import { callerMismatch, refuse, scopeViolation } from "../agent-scope.ts";
import { hashToken, newAgentCredential, type Principal } from "../auth.ts";
import { type ApiContext, actorOf, type RouteDef } from "../context.ts";
import { GroupCommit } from "../group-commit.ts";
import { logKey } from "../waiters.ts";
import { idParam } from "./params.ts";

/**
 * An agent may act only as itself: the caller may act as that agent (see `callerMismatch`) and the
 * agent id must exist and belong to the calling token. Only ownership is checked here; `leaseOf`
 * reads the whole record.
 */
async function ownAgent(
  ctx: ApiContext,
  owners: Owners,
  req: FastifyRequest,
  who: Principal,
  agentId: string,
): Promise<void> {
  const known = owners.get(agentId);
  if (known !== undefined) {
    await checkCaller(ctx, req, who, agentId, known);
    return;
  }
  await leaseOf(ctx, owners, req, who, agentId);
}

/** Refuses (and audits) a caller that may not act as the agent; `owner` is its registering token, once read. */
async function checkCaller(
  ctx: ApiContext,
  req: FastifyRequest,
  who: Principal,
  agentId: string,
  owner?: string | null,
): Promise<void> {
  const mismatch =
    callerMismatch(who, agentId) ??
    (owner === undefined || owner === who.tokenId
      ? null
      : `agent ${agentId} was registered with another token`);
  if (mismatch) throw await refuse(ctx, req, who, { code: "forbidden", message: mismatch, target: agentId });
}

/** An agent's registering token never changes, so once looked up it is remembered. */
type Owners = Map<string, string | null>;

async function leaseOf(
  ctx: ApiContext,
  owners: Owners,
  req: FastifyRequest,
  who: Principal,
  agentId: string,
): Promise<AgentLease> {
  await checkCaller(ctx, req, who, agentId);
  const lease = await ctx.store.getAgentLease(agentId);
  if (!lease) throw new SkiffError("not_found", `no agent ${agentId}; register again`);
  if (owners.size > 100_000) owners.clear();
  owners.set(agentId, lease.tokenId);
  await checkCaller(ctx, req, who, agentId, lease.tokenId);
  return lease;
}

function leaseError(reason: "not_found" | "lease_lost" | "already_final", jobId: string): SkiffError {
  if (reason === "not_found") return new SkiffError("not_found", `no job ${jobId}`);
  if (reason === "already_final") return new SkiffError("already_final", `job ${jobId} is already final`);
  return new SkiffError("lease_lost", `the lease on job ${jobId} is no longer yours; stop it`);
}

export function agentProtocolRoutes(ctx: ApiContext): RouteDef[] {
  const owners: Owners = new Map();
  const { store, config } = ctx;
  // Heartbeats and finishes from many agents share commits (see GroupCommit); a heartbeat that
  // supersedes an older one of the same agent in a batch replaces it.
  const heartbeats = new GroupCommit(
    (inputs: Parameters<typeof store.heartbeats>[0]) => store.heartbeats(inputs),
    {
      keyOf: (input) => input.agentId,
    },
  );
  const finishes = new GroupCommit((inputs: Parameters<typeof store.finishJobs>[0]) =>
    store.finishJobs(inputs),
  );
  return [
    {
      method: "POST",
      url: "/v1/agent/register",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const body = parseOrThrow(AgentRegisterBody, req.body, "register body");
        const queues = queuesOf(body.labels);
        const actor = `${who.name}/${body.name}`;
        const outside = scopeViolation(who.scope, queues, body.labels);
        if (who.agentId !== null || outside !== null) {
          throw await refuse(ctx, req, who, {
            code: who.agentId !== null ? "forbidden" : "out_of_scope",
            message:
              who.agentId !== null
                ? "an agent's own credential cannot register agents; register with the agent token"
                : `cannot register ${body.name}: ${outside}`,
            actor,
            action: "agent.register",
            target: body.name,
            details: { queues, labels: body.labels, scope: who.scope, tokenId: who.tokenId },
          });
        }
        const agentToken = newAgentCredential();
        const { value: agent } = await store.registerAgent(
          { ...body, queues, tokenId: who.tokenId, credentialHash: hashToken(agentToken) },
          { ...actorOf(req, who), actor },
        );
        if (agent.unsafe)
          req.log.warn({ agentId: agent.id, name: agent.name }, "agent runs steps WITHOUT a sandbox");
        return {
          agentId: agent.id,
          heartbeatIntervalMs: config.heartbeatIntervalMs,
          offlineAfterMs: config.offlineAfterMs,
          agentToken,
        };
      },
    },
    {
      method: "POST",
      url: "/v1/agent/heartbeat",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const body = parseOrThrow(AgentHeartbeatBody, req.body, "heartbeat body");
        await ownAgent(ctx, owners, req, who, body.agentId);
        const hb = await heartbeats.submit({
          agentId: body.agentId,
          activity: body.status,
          resources: body.resources,
          running: body.running,
        });
        if (!hb) throw new SkiffError("not_found", `no agent ${body.agentId}; register again`);
        ctx.metrics.heartbeats.inc();
        const commands: AgentCommand[] = [];
        if (hb.drainRequested) commands.push({ type: "drain", reason: hb.drainReason ?? "drain requested" });
        for (const c of hb.cancels) commands.push({ type: "cancel", ...c });
        return { commands };
      },
    },
    {
      method: "POST",
      url: "/v1/agent/claim",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const body = parseOrThrow(AgentClaimBody, req.body, "claim body");
        const lease = await leaseOf(ctx, owners, req, who, body.agentId);
        // Checked on every claim against the token's scope as it stands now, so an agent registered
        // under a wider scope (or before scopes existed) cannot take work outside the current one.
        const outside = scopeViolation(lease.tokenScope, lease.queues, lease.labels);
        if (outside) {
          throw await refuse(ctx, req, who, {
            code: "out_of_scope",
            message: `agent ${lease.id} may not claim: ${outside}`,
            target: lease.id,
            details: { queues: lease.queues, scope: lease.tokenScope },
          });
        }
        const deadline = Date.now() + Math.min(body.waitMs, config.maxClaimWaitMs);
        const gone = abortOnClose(req);
        for (;;) {
          if (lease.drainRequested || ctx.state.shuttingDown) return { jobs: [] };
          const armed = ctx.waiters.arm(lease.queues);
          const claimed = await store.claimJobs(body.agentId, lease.queues, body.max);
          if (claimed.length > 0 || Date.now() >= deadline || gone.signal.aborted) {
            armed.cancel();
            gone.dispose();
            const now = Date.now();
            for (const c of claimed)
              ctx.metrics.claimLatency.observe((now - Date.parse(c.job.createdAt)) / 1000);
            return { jobs: claimed };
          }
          await armed.wait(deadline - Date.now(), gone.signal);
          const fresh = await store.getAgentLease(body.agentId);
          if (fresh) lease.drainRequested = fresh.drainRequested;
        }
      },
    },
    {
      method: "POST",
      url: "/v1/agent/jobs/:id/events",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const jobId = idParam(req);
        const body = parseOrThrow(AgentEventsBody, req.body, "events body");
        await ownAgent(ctx, owners, req, who, body.agentId);
        const res = await store.appendEvents({
          jobId,
          agentId: body.agentId,
          epoch: body.epoch,
          events: body.events,
          logCapBytes: config.logCapBytes,
        });
        if (!res.ok) throw leaseError(res.reason, jobId);
        if (res.lines.length > 0) await ctx.bus.wake(logKey(jobId)).catch(() => {});
        return { cancel: res.cancel, accepted: res.lines.length };
      },
    },
    {
      method: "POST",
      url: "/v1/agent/jobs/:id/finish",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const jobId = idParam(req);
        const body = parseOrThrow(AgentFinishBody, req.body, "finish body");
        await ownAgent(ctx, owners, req, who, body.agentId);
        const res = await finishes.submit({ jobId, ...body });
        if (!res.ok) throw leaseError(res.reason, jobId);
        await ctx.bus.wake(logKey(jobId)).catch(() => {});
        return { job: res.job };
      },
    },
    {
      method: "POST",
      url: "/v1/agent/deregister",
      role: "agent",
      mutating: true,
      async handler(req, _reply, who) {
        const body = parseOrThrow(AgentDeregisterBody, req.body, "deregister body");
        const lease = await leaseOf(ctx, owners, req, who, body.agentId);
        const { value } = await store.deregisterAgent(body.agentId, {
          ...actorOf(req, who),
          actor: `${who.name}/${lease.name}`,
        });
        await ctx.principals.agentsGone([body.agentId]);
        for (const queue of new Set(value.requeue.requeued.map((j) => j.queue)))
          await ctx.bus.wake(queue).catch(() => {});
        // Their logs got the line saying how the attempt ended: followers read it now.
        for (const job of [...value.requeue.requeued, ...value.requeue.failed, ...value.requeue.canceled])
          await ctx.bus.wake(logKey(job.id)).catch(() => {});
        return { ok: true, requeued: value.requeue.requeued.map((j) => j.id) };
      },
    },
  ];
}

/** An AbortSignal that fires when the client goes away mid long-poll. */
function abortOnClose(req: FastifyRequest): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onClose = () => {
    if (!req.raw.complete || req.raw.destroyed) controller.abort();
  };
  req.raw.socket.on("close", onClose);
  return { signal: controller.signal, dispose: () => req.raw.socket.off("close", onClose) };
}
