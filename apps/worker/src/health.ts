import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Agent } from "./agent.ts";
import type { WorkerMetrics } from "./metrics.ts";

/** `/healthz`, `/readyz` (503 until registered and while draining) and `/metrics` on the health port. */
export async function startHealthServer(
  agent: Agent,
  metrics: WorkerMetrics,
  host: string,
  port: number,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok" }));
    } else if (path === "/readyz") {
      const ready = agent.ready;
      res.writeHead(ready ? 200 : 503, { "content-type": "application/json" }).end(
        JSON.stringify({
          status: ready ? "ready" : "not_ready",
          state: agent.state,
          agentId: agent.id,
          running: agent.running.length,
        }),
      );
    } else if (path === "/metrics") {
      res
        .writeHead(200, { "content-type": metrics.registry.contentType })
        .end(await metrics.registry.metrics());
    } else {
      res
        .writeHead(404, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { code: "not_found", message: `no route ${path}` } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${host}:${addr.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
