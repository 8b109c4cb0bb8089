import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Gauge, Registry } from "prom-client";
import type { Controller } from "./controller.ts";

/** Port 8788: `/healthz`, `/readyz` (200 on the leader and on a healthy standby), `/snapshot`, `/metrics`. */
export async function startControllerServer(controller: Controller, host: string, port: number) {
  const registry = new Registry();
  new Gauge({
    name: "skiff_controller_leader",
    help: "1 while this controller leads",
    registers: [registry],
    collect() {
      this.set(controller.leader.current.leading ? 1 : 0);
    },
  });
  new Gauge({
    name: "skiff_controller_workers",
    help: "Workers by desired and actual",
    labelNames: ["kind"],
    registers: [registry],
    collect() {
      const s = controller.snapshot();
      this.set({ kind: "desired" }, s.desired ?? 0);
      this.set({ kind: "actual" }, s.actual);
    },
  });
  const server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const json = (status: number, body: unknown) =>
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (path === "/healthz") json(200, { status: "ok" });
    else if (path === "/readyz") json(200, { status: "ready", leading: controller.leader.current.leading });
    else if (path === "/snapshot") json(200, controller.snapshot());
    else if (path === "/metrics")
      res.writeHead(200, { "content-type": registry.contentType }).end(await registry.metrics());
    else json(404, { error: { code: "not_found", message: `no route ${path}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${host}:${addr.port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
