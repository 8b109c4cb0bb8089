import { hostname } from "node:os";
import { join } from "node:path";
import { hashToken, newTokenSecret } from "@skiff/api";
import type { Store } from "@skiff/store";
import { chooseDriver, type RunningWorker, startWorker, WorkerConfig } from "@skiff/worker";
import type pino from "pino";

export interface EmbeddedOptions {
  apiUrl: string;
  store: Store;
  home: string;
  workers: number;
  slots: number;
  sandbox: "auto" | "bwrap" | "docker";
  logger: pino.Logger;
}

const EMBEDDED_TOKEN_NAME = "embedded-workers";

/**
 * The combined node's workers: real agents speaking the protocol to the local API over loopback,
 * with an agent token minted for this run (the previous run's is revoked).
 */
export async function startEmbeddedWorkers(
  opts: EmbeddedOptions,
): Promise<{ workers: RunningWorker[]; sandbox: string } | { workers: []; problem: string }> {
  if (opts.workers === 0) return { workers: [], problem: "--workers 0" };
  const base = WorkerConfig.parse({
    apiUrl: opts.apiUrl,
    token: "probe",
    name: "probe",
    sandbox: opts.sandbox,
  });
  try {
    await chooseDriver(base);
  } catch (err) {
    return { workers: [], problem: (err as Error).message };
  }
  const system = { actor: "skiff-up", role: "system" };
  for (const t of await opts.store.listTokens()) {
    if (t.name === EMBEDDED_TOKEN_NAME && !t.revokedAt) await opts.store.revokeToken(t.id, system);
  }
  const token = newTokenSecret();
  await opts.store.createToken({ name: EMBEDDED_TOKEN_NAME, role: "agent", hash: hashToken(token) }, system);
  const workers: RunningWorker[] = [];
  for (let i = 1; i <= opts.workers; i++) {
    workers.push(
      await startWorker(
        {
          apiUrl: opts.apiUrl,
          token,
          name: `${hostname()}-embedded-${i}`,
          slots: opts.slots,
          sandbox: opts.sandbox,
          healthPort: null,
          workRoot: join(opts.home, "work"),
          drainTimeoutMs: 10_000,
        },
        opts.logger.child({ worker: i }),
      ),
    );
  }
  return { workers, sandbox: workers[0]?.driver.kind ?? "none" };
}
