import { hostname } from "node:os";
import { join } from "node:path";
import { Controller, createEmbeddedScaler, mintWorkerToken } from "@skiff/controller";
import type { Store } from "@skiff/store";
import { chooseDriver, WorkerConfig } from "@skiff/worker";
import type pino from "pino";

export interface EmbeddedOptions {
  apiUrl: string;
  store: Store;
  home: string;
  /** Set the fleet to this many workers (manual); without it the stored fleet settings apply. */
  workers?: number;
  slots: number;
  sandbox: "auto" | "bwrap" | "docker";
  logger: pino.Logger;
}

export interface EmbeddedFleet {
  controller: Controller;
  sandbox: string;
  stop(): Promise<void>;
}

/**
 * The combined node's fleet: a controller with the embedded scaler, so `PUT /v1/fleet` (and the
 * console's scale) resizes it. The workers are real agents on loopback with a token minted per run.
 */
export async function startEmbeddedFleet(
  opts: EmbeddedOptions,
): Promise<EmbeddedFleet | { problem: string }> {
  const probe = WorkerConfig.parse({
    apiUrl: opts.apiUrl,
    token: "probe",
    name: "probe",
    sandbox: opts.sandbox,
  });
  let sandbox: string;
  try {
    sandbox = (await chooseDriver(probe)).kind;
  } catch (err) {
    return { problem: (err as Error).message };
  }
  const actor = `skiff-up@${hostname()}`;
  const token = await mintWorkerToken(opts.store, "embedded-workers", actor);
  if (opts.workers !== undefined) {
    await opts.store.updateFleet({ mode: "manual", replicas: opts.workers }, { actor, role: "system" });
  }
  const scaler = createEmbeddedScaler(
    {
      apiUrl: opts.apiUrl,
      token,
      slots: opts.slots,
      sandbox: opts.sandbox,
      workRoot: join(opts.home, "work"),
      drainTimeoutMs: 10_000,
    },
    `${hostname()}-embedded`,
    opts.logger,
  );
  const controller = new Controller(opts.store, scaler, {
    holder: actor,
    tickMs: 1_000,
    slotsPerWorker: opts.slots,
    decide: { upCooldownMs: 2_000, downCooldownMs: 10_000, downStableMs: 10_000 },
    log: (msg, fields) => opts.logger.info(fields ?? {}, `controller: ${msg}`),
  });
  controller.start();
  return {
    controller,
    sandbox,
    async stop() {
      await controller.stop();
      await scaler.close();
    },
  };
}
