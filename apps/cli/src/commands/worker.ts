import { hostname } from "node:os";
import { join } from "node:path";
import type { WorkerConfigInput } from "@skiff/worker";
import { type Command, Option } from "commander";
import { onShutdownSignals, parsePort, skiffHome, UsageError } from "../env.ts";
import { createLogger, LOG_FORMAT_HELP, logFormat } from "../log.ts";
import { portInUse } from "../startup-errors.ts";

interface WorkerOptions {
  apiUrl?: string;
  /** The old name of --api-url, still accepted. */
  baseUrl?: string;
  token?: string;
  name?: string;
  slots: string;
  sandbox: string;
  labels?: string;
  healthHost: string;
  healthPort: string;
  unsafeNoSandbox?: boolean;
  workDir?: string;
  egressAllow?: string;
  diskMb: string;
  maxDiskMb?: string;
  logFormat?: string;
}

export function parseLabels(raw: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!raw) return labels;
  let last: string | null = null;
  for (const pair of raw.split(",")) {
    const [k, ...rest] = pair.split("=");
    // A piece without `=` continues the value before it: `queue=a,b` serves queues a and b.
    if (rest.length === 0 && last !== null && k?.trim()) {
      labels[last] = `${labels[last]},${k.trim()}`;
      continue;
    }
    if (!k?.trim() || rest.length === 0)
      throw new UsageError(`--labels takes k=v pairs separated by commas, got "${pair}"`);
    last = k.trim();
    labels[last] = rest.join("=").trim();
  }
  return labels;
}

/**
 * What `skiff worker` runs with: a flag wins over the environment (SKIFF_URL, SKIFF_TOKEN), which
 * wins over the config file's `worker:` section (the only one it reads), which wins over the default.
 */
export async function workerSettings(
  flags: WorkerOptions & { config?: string },
  cmd: Command,
  env: NodeJS.ProcessEnv = process.env,
): Promise<WorkerConfigInput & { apiUrl: string; name: string; slots: number }> {
  const { loadConfig } = await import("../config.ts");
  const file = loadConfig(flags.config, skiffHome(env), env, "worker").config.worker ?? {};
  const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
  const fileUrl = Array.isArray(file.apiUrl) ? file.apiUrl.join(",") : file.apiUrl;
  const apiUrl = flags.apiUrl ?? flags.baseUrl ?? (env.SKIFF_URL || undefined) ?? fileUrl;
  const token = flags.token ?? (env.SKIFF_TOKEN || undefined);
  const sandbox = given("sandbox") ? flags.sandbox : (file.sandbox ?? flags.sandbox);
  const slotsRaw = given("slots") ? flags.slots : String(file.slots ?? flags.slots);
  const labels =
    flags.labels ??
    (file.labels
      ? Object.entries(file.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(",")
      : undefined);
  if (!apiUrl)
    throw new UsageError("--api-url (or SKIFF_URL) is required, e.g. --api-url http://127.0.0.1:8787");
  if (!token)
    throw new UsageError(
      "--token (or SKIFF_TOKEN) is required: an agent token from `skiff tokens create --role agent`",
    );
  if (!["auto", "bwrap", "docker"].includes(sandbox))
    throw new UsageError(`--sandbox must be bwrap, docker or auto, got "${sandbox}"`);
  const slots = Number(slotsRaw);
  if (!Number.isInteger(slots) || slots < 1)
    throw new UsageError(`--slots must be a positive integer, got "${slotsRaw}"`);
  const diskMb = Number(flags.diskMb);
  if (!Number.isInteger(diskMb) || diskMb < 16)
    throw new UsageError(`--disk-mb must be an integer of at least 16, got "${flags.diskMb}"`);
  const maxDiskMb = flags.maxDiskMb === undefined ? undefined : Number(flags.maxDiskMb);
  if (maxDiskMb !== undefined && (!Number.isInteger(maxDiskMb) || maxDiskMb < 16))
    throw new UsageError(`--max-disk-mb must be an integer of at least 16, got "${flags.maxDiskMb}"`);
  return {
    apiUrl,
    token,
    name: flags.name ?? file.name ?? hostname(),
    slots,
    labels: parseLabels(labels),
    sandbox: sandbox as "auto" | "bwrap" | "docker",
    unsafeNoSandbox: Boolean(flags.unsafeNoSandbox),
    healthHost: flags.healthHost,
    healthPort: parsePort(
      given("healthPort") ? flags.healthPort : String(file.healthPort ?? flags.healthPort),
      "--health-port",
    ),
    workRoot: flags.workDir ?? file.workDir ?? join(skiffHome(env), "work"),
    egressAllow: flags.egressAllow
      ? flags.egressAllow.split(",").map((c) => c.trim())
      : (file.egressAllow ?? []),
    defaultDiskMb: given("diskMb") ? diskMb : (file.defaultDiskMb ?? diskMb),
    ...(maxDiskMb !== undefined
      ? { maxDiskMb }
      : file.maxDiskMb !== undefined
        ? { maxDiskMb: file.maxDiskMb }
        : {}),
    ...(file.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: file.drainTimeoutMs }),
    ...(file.graceMs === undefined ? {} : { graceMs: file.graceMs }),
    ...(file.logCapBytes === undefined ? {} : { logCapBytes: file.logCapBytes }),
    ...(file.sandboxHostUid ? { sandboxHostUid: file.sandboxHostUid } : {}),
    ...(file.dockerOnlineNetwork ? { dockerOnlineNetwork: file.dockerOnlineNetwork } : {}),
  };
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run a worker: claims jobs from the API and runs each step in a sandbox")
    .option(
      "--api-url <url>",
      "the API's base URL (SKIFF_URL); several replicas separated by commas, tried in turn when one is unreachable",
    )
    .addOption(new Option("--base-url <url>").hideHelp())
    .option(
      "--token <token>",
      "an agent token; prefer SKIFF_TOKEN in the environment, as a flag is visible to every user of the host in ps",
    )
    .option("--name <name>", "this worker's name (default: the host name)")
    .option("--slots <n>", "jobs run at once", "2")
    .option("--sandbox <driver>", "bwrap, docker or auto (bwrap, then docker)", "auto")
    .option("--labels <k=v,...>", "labels; `queue=a,b` sets the queues served")
    .option("--health-host <host>", "address for /healthz, /readyz and /metrics", "127.0.0.1")
    .option("--health-port <port>", "port for /healthz, /readyz and /metrics (0 picks a free one)", "8789")
    .option("--work-dir <dir>", "where job workspaces live (default $SKIFF_HOME/work)")
    .option(
      "--egress-allow <cidr,...>",
      "private or host networks that network: on steps may still reach (default: none)",
    )
    .option("--disk-mb <n>", "disk for a job's workspace and /tmp, each, when the job sets none", "10240")
    .option("--max-disk-mb <n>", "the most disk a job may ask for (resources.diskMb); default: --disk-mb")
    .option("--unsafe-no-sandbox", "run steps as plain child processes, UNCONFINED (development only)")
    .option(
      "--config <file>",
      "config file (default $SKIFF_HOME/skiff.yaml when present): its `worker:` section",
    )
    .option("--log-format <format>", LOG_FORMAT_HELP)
    .action(async (flags: WorkerOptions & { config?: string }, cmd: Command) => {
      const settings = await workerSettings(flags, cmd);
      const { apiUrl, name, slots } = settings;
      const format = logFormat(flags.logFormat);
      const { startWorker } = await import("@skiff/worker");
      const { logger, release } = createLogger("skiff-worker", { format, holdAtMostMs: 3_000 });
      const worker = await startWorker(settings, logger).catch((err: unknown) => {
        release();
        throw (
          portInUse(err, settings.healthHost ?? "127.0.0.1", settings.healthPort ?? 0, "--health-port") ?? err
        );
      });
      process.stderr.write(
        `skiff worker ${name}: agent ${worker.agent.id} on ${apiUrl}, sandbox ${worker.driver.kind}` +
          `${worker.driver.kind === "none" ? " (UNSAFE: steps run unconfined)" : ""}, ${slots} slots` +
          `${worker.healthUrl ? `, health on ${worker.healthUrl}` : ""}\n`,
      );
      release();
      // The first signal drains (running jobs finish up to the drain timeout), a second exits at once;
      // a drain command from the API ends the process the same way.
      await Promise.race([
        onShutdownSignals("skiff worker", () => worker.stop("signal")),
        worker.agent.stopped,
      ]);
      await worker.stop("drained");
    });
}
