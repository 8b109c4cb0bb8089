import { hostname } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { createLogger, onShutdownSignals, parsePort, skiffHome, UsageError } from "../env.ts";

interface WorkerOptions {
  apiUrl?: string;
  token?: string;
  name?: string;
  slots: string;
  sandbox: string;
  labels?: string;
  healthPort: string;
  unsafeNoSandbox?: boolean;
  workDir?: string;
  egressAllow?: string;
  diskMb: string;
}

export function parseLabels(raw: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!raw) return labels;
  for (const pair of raw.split(",")) {
    const [k, ...rest] = pair.split("=");
    if (!k || rest.length === 0)
      throw new UsageError(`--labels takes k=v pairs separated by commas, got "${pair}"`);
    labels[k.trim()] = rest.join("=").trim();
  }
  return labels;
}

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run a worker: claims jobs from the API and runs each step in a sandbox")
    .option("--api-url <url>", "the API's base URL (SKIFF_URL)", process.env.SKIFF_URL)
    .option("--token <token>", "an agent token (SKIFF_TOKEN)", process.env.SKIFF_TOKEN)
    .option("--name <name>", "this worker's name (default: the host name)")
    .option("--slots <n>", "jobs run at once", "2")
    .option("--sandbox <driver>", "bwrap, docker or auto (bwrap, then docker)", "auto")
    .option("--labels <k=v,...>", "labels; `queue=a,b` sets the queues served")
    .option("--health-port <port>", "port for /healthz, /readyz and /metrics (0 picks a free one)", "8789")
    .option("--work-dir <dir>", "where job workspaces live (default $SKIFF_HOME/work)")
    .option(
      "--egress-allow <cidr,...>",
      "private or host networks that network: on steps may still reach (default: none)",
    )
    .option("--disk-mb <n>", "disk for a job's workspace and /tmp, each, when the job sets none", "10240")
    .option("--unsafe-no-sandbox", "run steps as plain child processes, UNCONFINED (development only)")
    .option(
      "--config <file>",
      "config file (default $SKIFF_HOME/skiff.yaml when present): its `worker:` section",
    )
    .action(async (flags: WorkerOptions & { config?: string }, cmd: Command) => {
      const { loadConfig } = await import("../config.ts");
      const file = loadConfig(flags.config, skiffHome()).config.worker ?? {};
      const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
      const opts: WorkerOptions = {
        ...flags,
        apiUrl: flags.apiUrl ?? file.apiUrl,
        name: flags.name ?? file.name,
        slots: given("slots") ? flags.slots : String(file.slots ?? flags.slots),
        sandbox: given("sandbox") ? flags.sandbox : (file.sandbox ?? flags.sandbox),
        healthPort: given("healthPort") ? flags.healthPort : String(file.healthPort ?? flags.healthPort),
        workDir: flags.workDir ?? file.workDir,
        labels:
          flags.labels ??
          (file.labels
            ? Object.entries(file.labels)
                .map(([k, v]) => `${k}=${v}`)
                .join(",")
            : undefined),
      };
      if (!opts.apiUrl)
        throw new UsageError("--api-url (or SKIFF_URL) is required, e.g. --api-url http://127.0.0.1:8787");
      if (!opts.token)
        throw new UsageError(
          "--token (or SKIFF_TOKEN) is required: an agent token from `skiff tokens create --role agent`",
        );
      if (!["auto", "bwrap", "docker"].includes(opts.sandbox))
        throw new UsageError(`--sandbox must be bwrap, docker or auto, got "${opts.sandbox}"`);
      const slots = Number(opts.slots);
      if (!Number.isInteger(slots) || slots < 1)
        throw new UsageError(`--slots must be a positive integer, got "${opts.slots}"`);
      const diskMb = Number(flags.diskMb);
      if (!Number.isInteger(diskMb) || diskMb < 16)
        throw new UsageError(`--disk-mb must be an integer of at least 16, got "${flags.diskMb}"`);
      const { startWorker } = await import("@skiff/worker");
      const name = opts.name ?? hostname();
      const logger = createLogger("skiff-worker");
      const worker = await startWorker(
        {
          apiUrl: opts.apiUrl,
          token: opts.token,
          name,
          slots,
          labels: parseLabels(opts.labels),
          sandbox: opts.sandbox as "auto" | "bwrap" | "docker",
          unsafeNoSandbox: Boolean(opts.unsafeNoSandbox),
          healthPort: parsePort(opts.healthPort, "--health-port"),
          workRoot: opts.workDir ?? join(skiffHome(), "work"),
          egressAllow: flags.egressAllow
            ? flags.egressAllow.split(",").map((c) => c.trim())
            : (file.egressAllow ?? []),
          defaultDiskMb: given("diskMb") ? diskMb : (file.defaultDiskMb ?? diskMb),
          ...(file.sandboxHostUid ? { sandboxHostUid: file.sandboxHostUid } : {}),
          ...(file.dockerOnlineNetwork ? { dockerOnlineNetwork: file.dockerOnlineNetwork } : {}),
        },
        logger,
      );
      process.stderr.write(
        `skiff worker ${name}: agent ${worker.agent.id} on ${opts.apiUrl}, sandbox ${worker.driver.kind}` +
          `${worker.driver.kind === "none" ? " (UNSAFE: steps run unconfined)" : ""}, ${slots} slots` +
          `${worker.healthUrl ? `, health on ${worker.healthUrl}` : ""}\n`,
      );
      // The first signal drains (running jobs finish up to the drain timeout), a second exits at once;
      // a drain command from the API ends the process the same way.
      await Promise.race([
        onShutdownSignals("skiff worker", () => worker.stop("signal")),
        worker.agent.stopped,
      ]);
      await worker.stop("drained");
    });
}
