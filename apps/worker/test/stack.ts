import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { waitFor } from "@skiff/testkit";
import pino from "pino";
import { type RunningWorker, startWorker, type WorkerConfigInput } from "../src/index.ts";

export const silent = pino({ level: process.env.TEST_LOG ?? "silent" });

/** An in-process API on PGlite with one real worker attached over loopback HTTP. */
export interface Stack {
  store: Store;
  api: Api;
  url: string;
  worker: RunningWorker;
  workRoot: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  submit(spec: Record<string, unknown>): Promise<any>;
  final(jobId: string, timeoutMs?: number): Promise<any>;
  logs(jobId: string): Promise<any[]>;
  close(): Promise<void>;
}

export async function startStack(
  worker: Partial<WorkerConfigInput> & { queue: string },
  apiConfig: { logCapBytes?: number } = {},
  /** PostgreSQL instead of the embedded PGlite (a database of the test's own). */
  databaseUrl?: string,
  /** The worker's way to the API, e.g. a relay the test can switch off (default: the API itself). */
  workerApiUrl?: (apiUrl: string) => Promise<string>,
): Promise<Stack> {
  const store = await openStore(databaseUrl ? { databaseUrl } : {});
  const bus = await createBus({});
  const api = buildApi({
    config: { port: 0, heartbeatIntervalMs: 500, offlineAfterMs: 5_000, reaperIntervalMs: 200, ...apiConfig },
    store,
    bus,
    logger: silent,
  });
  const url = await api.listen();
  const operator = newTokenSecret();
  const agentToken = newTokenSecret();
  await store.createToken(
    { name: "olivia", role: "operator", hash: hashToken(operator) },
    { actor: "t", role: "system" },
  );
  await store.createToken(
    { name: "pool", role: "agent", hash: hashToken(agentToken) },
    { actor: "t", role: "system" },
  );
  const workRoot = mkdtempSync(join(tmpdir(), "skiff-work-"));
  const { queue, ...rest } = worker;
  const running = await startWorker(
    {
      apiUrl: workerApiUrl ? await workerApiUrl(url) : url,
      token: agentToken,
      name: `test-${queue}`,
      slots: 2,
      labels: { queue },
      sandbox: "bwrap",
      healthPort: 0,
      workRoot,
      graceMs: 1_000,
      claimWaitMs: 2_000,
      logBatchMs: 50,
      // Limits are promised against the host's free disk: 1 GiB a job keeps many test jobs in reach.
      defaultDiskMb: 1_024,
      ...rest,
    },
    silent,
  );
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operator}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  return {
    store,
    api,
    url,
    worker: running,
    workRoot,
    call,
    async submit(spec) {
      const res = await call("POST", "/v1/jobs", { queue, ...spec });
      if (res.status !== 201) throw new Error(`submit failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    final: (jobId, timeoutMs = 30_000) =>
      waitFor(
        `job ${jobId} to finish`,
        async () => {
          const job = (await call("GET", `/v1/jobs/${jobId}`)).body;
          return ["succeeded", "failed", "canceled", "timed_out"].includes(job.state) ? job : undefined;
        },
        timeoutMs,
        50,
      ),
    logs: async (jobId) => (await call("GET", `/v1/jobs/${jobId}/logs?limit=10000`)).body.lines,
    async close() {
      await running.stop();
      await api.shutdown();
      await bus.close();
      await store.close();
      rmSync(workRoot, { recursive: true, force: true });
    },
  };
}
