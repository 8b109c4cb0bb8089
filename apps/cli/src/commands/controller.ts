import { hostname } from "node:os";
import { join } from "node:path";
import type { Scaler } from "@skiff/controller";
import type { Command } from "commander";
import { createLogger, databaseUrl, onShutdownSignals, parsePort, skiffHome, UsageError } from "../env.ts";

interface ControllerCliOptions {
  scaler: string;
  port: string;
  host: string;
  apiUrl?: string;
  slots: string;
  name?: string;
}

export function registerController(program: Command): void {
  program
    .command("controller")
    .description("run the fleet controller: leader-elected, reconciles the worker count through a scaler")
    .option("--scaler <kind>", "embedded or process (compose and kubernetes: not in this build)", "process")
    .option("--host <host>", "address for /healthz, /readyz, /snapshot and /metrics", "127.0.0.1")
    .option("--port <port>", "port for /healthz, /readyz, /snapshot and /metrics", "8788")
    .option(
      "--api-url <url>",
      "the API the workers it starts connect to (SKIFF_URL)",
      process.env.SKIFF_URL ?? "http://127.0.0.1:8787",
    )
    .option("--slots <n>", "slots per worker it starts", "2")
    .option("--name <name>", "this controller's name in leader election and the audit log")
    .action(async (opts: ControllerCliOptions) => {
      const url = databaseUrl();
      if (!url)
        throw new UsageError(
          "`skiff controller` needs DATABASE_URL (the API's PostgreSQL): it elects a leader there",
        );
      if (opts.scaler !== "process" && opts.scaler !== "embedded") {
        throw new UsageError(
          `--scaler must be process or embedded in this build, got "${opts.scaler}" (compose and kubernetes: issue 5)`,
        );
      }
      const slots = Number(opts.slots);
      if (!Number.isInteger(slots) || slots < 1)
        throw new UsageError(`--slots must be a positive integer, got "${opts.slots}"`);
      const port = parsePort(opts.port);
      const {
        Controller,
        createEmbeddedScaler,
        createProcessScaler,
        mintWorkerToken,
        startControllerServer,
      } = await import("@skiff/controller");
      const { openStore } = await import("@skiff/store");
      const holder = opts.name ?? `controller@${hostname()}:${process.pid}`;
      const logger = createLogger("skiff-controller");
      const store = await openStore({ databaseUrl: url, applicationName: "skiff-controller", poolSize: 4 });
      const apiUrl = opts.apiUrl ?? "http://127.0.0.1:8787";
      const token = await mintWorkerToken(store, `controller-workers-${opts.scaler}`, holder);
      const scaler: Scaler =
        opts.scaler === "process"
          ? createProcessScaler({
              apiUrl,
              token,
              namePrefix: `${hostname()}-w`,
              extraArgs: ["--slots", String(slots), "--work-dir", join(skiffHome(), "work")],
              onEvent: (msg, fields) => logger.info(fields, msg),
            })
          : createEmbeddedScaler(
              { apiUrl, token, slots, workRoot: join(skiffHome(), "work") },
              `${hostname()}-embedded`,
              logger,
            );
      const controller = new Controller(store, scaler, {
        holder,
        tickMs: 1_000,
        slotsPerWorker: slots,
        decide: { upCooldownMs: 2_000, downCooldownMs: 15_000, downStableMs: 15_000 },
        log: (msg, fields) => logger.info(fields ?? {}, msg),
      });
      controller.start();
      const server = await startControllerServer(controller, opts.host, port);
      process.stderr.write(
        `skiff controller ${holder}: scaler ${opts.scaler}, workers talk to ${apiUrl}, status on ${server.url}/snapshot\n`,
      );
      await onShutdownSignals("skiff controller", async () => {
        await controller.stop();
        await scaler.close();
        await server.close();
        await store.close();
      });
    });
}
