import { Agent, type AgentLogger } from "./agent.ts";
import { AgentClient } from "./client.ts";
import { apiUrls, WorkerConfig, type WorkerConfigInput } from "./config.ts";
import { startHealthServer } from "./health.ts";
import { createWorkerMetrics } from "./metrics.ts";
import { createBwrapDriver } from "./sandbox/bwrap.ts";
import { createDockerDriver } from "./sandbox/docker.ts";
import { createUnsafeDriver } from "./sandbox/none.ts";
import type { SandboxDriver } from "./sandbox/types.ts";
import { secretsFromEnv } from "./secrets.ts";

export interface RunningWorker {
  agent: Agent;
  driver: SandboxDriver;
  healthUrl: string | null;
  /** Drains (finishing running jobs up to the drain timeout), deregisters and closes. */
  stop(reason?: string): Promise<void>;
}

/**
 * Picks the sandbox driver: the one asked for, or with `auto` bubblewrap then Docker. Without a
 * usable one the worker refuses to start and says what to install, unless `--unsafe-no-sandbox`.
 */
export async function chooseDriver(config: WorkerConfig): Promise<SandboxDriver> {
  if (config.unsafeNoSandbox) return createUnsafeDriver();
  const candidates: Record<"bwrap" | "docker", () => SandboxDriver> = {
    bwrap: () =>
      createBwrapDriver({
        rootfs: config.bwrapRootfs,
        hostUid: config.sandboxHostUid,
        egressAllow: config.egressAllow,
      }),
    docker: () =>
      createDockerDriver({
        socketPath: config.dockerSocket,
        defaultImage: config.dockerImage,
        onlineNetwork: config.dockerOnlineNetwork,
      }),
  };
  const order: ("bwrap" | "docker")[] = config.sandbox === "auto" ? ["bwrap", "docker"] : [config.sandbox];
  const problems: string[] = [];
  for (const kind of order) {
    const driver = candidates[kind]();
    try {
      await driver.check();
      return driver;
    } catch (err) {
      problems.push(`${kind}: ${(err as Error).message}`);
    }
  }
  throw new Error(
    `no usable sandbox driver:\n  ${problems.join("\n  ")}\n` +
      "install bubblewrap (`apt-get install bubblewrap`) or Docker, or start the worker with --unsafe-no-sandbox to run steps unconfined",
  );
}

export async function startWorker(input: WorkerConfigInput, log: AgentLogger): Promise<RunningWorker> {
  const config = Object.freeze(WorkerConfig.parse({ secrets: secretsFromEnv(process.env), ...input }));
  const driver = await chooseDriver(config);
  const metrics = createWorkerMetrics();
  const client = new AgentClient(apiUrls(config.apiUrl), config.token);
  const agent = new Agent(client, driver, config, metrics, log);
  const health =
    config.healthPort === null
      ? null
      : await startHealthServer(agent, metrics, config.healthHost, config.healthPort);
  try {
    await agent.start();
  } catch (err) {
    await health?.close();
    await client.close();
    throw err;
  }
  return {
    agent,
    driver,
    healthUrl: health?.url ?? null,
    async stop(reason = "stopping") {
      await agent.drain(reason);
      await health?.close();
      await client.close();
    },
  };
}
