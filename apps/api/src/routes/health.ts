import type { FastifyInstance } from "fastify";
import type { ApiContext } from "../context.ts";
import { quietLevel } from "../log-level.ts";

async function check(fn: () => Promise<void>, timeoutMs = 2000): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Probes and metrics: no token needed (metrics can be made to need one in the config). */
export function registerHealth(app: FastifyInstance, ctx: ApiContext): void {
  // Probes hit every few seconds; log them only when the logger is already this quiet.
  const logLevel = quietLevel(app.log.level);
  app.get("/healthz", { logLevel }, async () => ({ status: "ok" }));
  app.get("/readyz", { logLevel }, async (_req, reply) => {
    const [database, bus] = await Promise.all([check(() => ctx.store.ping()), check(() => ctx.bus.ping())]);
    const checks = {
      database: { ...database, kind: ctx.store.kind },
      bus: { ...bus, kind: ctx.bus.kind },
      shutdown: { ok: !ctx.state.shuttingDown },
    };
    const ready = database.ok && bus.ok && !ctx.state.shuttingDown;
    reply.code(ready ? 200 : 503);
    return { status: ready ? "ready" : "not_ready", checks };
  });
}
