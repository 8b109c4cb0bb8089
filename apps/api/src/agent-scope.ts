import { type ErrorCode, type Labels, SkiffError, type TokenScope } from "@skiff/protocol";
import type { FastifyRequest } from "fastify";
import type { Principal } from "./auth.ts";
import type { ApiContext } from "./context.ts";

/**
 * Why an agent serving `queues` with `labels` falls outside a token's scope, or null when it does
 * not (an unscoped token allows everything). Every scoped label must be present with its value.
 */
export function scopeViolation(scope: TokenScope | null, queues: string[], labels: Labels): string | null {
  if (!scope) return null;
  const outside = queues.filter((q) => !scope.queues.includes(q));
  if (outside.length > 0) {
    return `queue ${outside.join(", ")} is outside this token's scope (queues ${scope.queues.join(", ")})`;
  }
  for (const [key, value] of Object.entries(scope.labels ?? {})) {
    if (labels[key] !== value) {
      const got = key in labels ? `${key}=${labels[key]}` : `no ${key} label`;
      return `${got} is outside this token's scope (labels must include ${key}=${value})`;
    }
  }
  return null;
}

/**
 * Who the caller may act as. An agent's own credential acts only as that agent; a scoped agent
 * token only registers (its agents then call with their own credentials); an unscoped token acts
 * as any agent it registered, as before scopes existed. Returns why not, or null.
 */
export function callerMismatch(who: Principal, agentId: string): string | null {
  if (who.agentId !== null) {
    return who.agentId === agentId
      ? null
      : `this credential belongs to agent ${who.agentId}; it cannot act as agent ${agentId}`;
  }
  if (who.scope !== null) {
    return `a scoped agent token only registers agents; call as agent ${agentId} with the agentToken its registration returned`;
  }
  return null;
}

/**
 * Records a refused agent request in the audit log (as the guard does for a role refusal) and
 * returns the error to throw.
 */
export async function refuse(
  ctx: ApiContext,
  req: FastifyRequest,
  who: Principal,
  refusal: {
    code: ErrorCode;
    message: string;
    target: string;
    actor?: string;
    action?: string;
    details?: Record<string, unknown>;
  },
): Promise<SkiffError> {
  await ctx.store
    .appendAudit({
      actor: refusal.actor ?? (who.agentId ? `${who.name}/${who.agentId}` : who.name),
      role: who.role,
      action: refusal.action ?? `${req.method} ${req.routeOptions.url ?? req.url}`,
      target: refusal.target,
      outcome: "denied",
      requestId: String(req.id),
      sourceIp: req.ip,
      details: { status: 403, code: refusal.code, reason: refusal.message, ...refusal.details },
    })
    .catch((err) => {
      req.log.error({ err }, "could not audit a refused agent request");
      return null;
    });
  return new SkiffError(refusal.code, refusal.message);
}
