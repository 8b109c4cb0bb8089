import { hostname } from "node:os";
import { join } from "node:path";
import type { Scaler } from "@skiff/controller";
import { type Command, Option } from "commander";
import { databaseUrl, onShutdownSignals, parsePort, skiffHome, UsageError } from "../env.ts";
import { createLogger, LOG_FORMAT_HELP, logFormat } from "../log.ts";
import { databaseUnreachable, portInUse } from "../startup-errors.ts";

interface ControllerCliOptions {
  scaler: string;
  /** The base compose file and its overrides, in order. */
  composeFile?: string[];
  composeProject?: string;
  composeService?: string;
  namespace?: string;
  deployment?: string;
  kubeconfig?: string;
  port: string;
  host: string;
  apiUrl?: string;
  /** The old name of --api-url, still accepted. */
  baseUrl?: string;
  slots: string;
  /** The queues its workers serve, comma-separated. */
  queues: string;
  name?: string;
  logFormat?: string;
}

export interface ControllerSettings
  extends Omit<ControllerCliOptions, "scaler" | "port" | "slots" | "queues"> {
  /** The queues its workers serve: only jobs queued on them size the fleet. */
  queues: string[];
  databaseUrl: string;
  /** Where the database URL came from, for messages: `DATABASE_URL` or the config file's field. */
  databaseSource: string;
  scaler: "process" | "embedded" | "compose" | "kubernetes";
  port: number;
  slots: number;
}

/**
 * What `skiff controller` runs with: a flag wins over the environment (DATABASE_URL, SKIFF_URL),
 * which wins over the config file's `database:` and `controller:` sections (the only ones it reads).
 */
export async function controllerSettings(
  flags: ControllerCliOptions & { config?: string },
  cmd: Command,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ControllerSettings> {
  const { loadConfig } = await import("../config.ts");
  const { file: configFile, config: loaded } = loadConfig(flags.config, skiffHome(env), env, "controller");
  const file = loaded.controller ?? {};
  const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
  const scaler = given("scaler") ? flags.scaler : (file.scaler ?? flags.scaler);
  const slots = given("slots") ? flags.slots : String(file.slots ?? flags.slots);
  const url = databaseUrl(env) ?? loaded.database?.url;
  if (!url)
    throw new UsageError(
      "`skiff controller` needs DATABASE_URL (the API's PostgreSQL): it elects a leader there",
    );
  if (!["process", "embedded", "compose", "kubernetes"].includes(scaler)) {
    throw new UsageError(`--scaler must be process, embedded, compose or kubernetes, got "${scaler}"`);
  }
  const n = Number(slots);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--slots must be a positive integer, got "${slots}"`);
  const queues = (given("queues") ? flags.queues.split(",") : (file.queues ?? flags.queues.split(",")))
    .map((q) => q.trim())
    .filter((q) => q !== "");
  if (queues.length === 0)
    throw new UsageError("--queues takes queue names separated by commas, e.g. default,gpu");
  return {
    ...flags,
    databaseUrl: url,
    databaseSource: databaseUrl(env) ? "DATABASE_URL" : `database.url in ${configFile}`,
    scaler: scaler as ControllerSettings["scaler"],
    port: parsePort(given("port") ? flags.port : String(file.port ?? flags.port)),
    apiUrl:
      flags.apiUrl ?? flags.baseUrl ?? (env.SKIFF_URL || undefined) ?? file.apiUrl ?? "http://127.0.0.1:8787",
    slots: n,
    queues,
  };
}

export function registerController(program: Command): void {
  program
    .command("controller")
    .description("run the fleet controller: leader-elected, reconciles the worker count through a scaler")
    .option("--scaler <kind>", "process, embedded, compose or kubernetes", "process")
    .option(
      "--compose-file <file>",
      "compose scaler: the compose file; repeat for override files, applied in order (default docker-compose.local.yml)",
      (file: string, files: string[] = []) => [...files, file],
    )
    .option("--compose-project <name>", "compose scaler: the project (-p)", "skiff-local")
    .option("--compose-service <name>", "compose scaler: the worker service", "worker")
    .option("--namespace <ns>", "kubernetes scaler: the namespace", "skiff")
    .option("--deployment <name>", "kubernetes scaler: the worker Deployment", "skiff-worker")
    .option("--kubeconfig <file>", "kubernetes scaler: a kubeconfig (default: in-cluster, else $KUBECONFIG)")
    .option("--host <host>", "address for /healthz, /readyz, /snapshot and /metrics", "127.0.0.1")
    .option("--port <port>", "port for /healthz, /readyz, /snapshot and /metrics", "8788")
    .option(
      "--api-url <url>",
      "the API the workers it starts connect to (SKIFF_URL, default http://127.0.0.1:8787)",
    )
    .addOption(new Option("--base-url <url>").hideHelp())
    .option("--slots <n>", "slots per worker it starts", "2")
    .option(
      "--queues <a,b>",
      "the queues its workers serve; only jobs queued on these size the fleet",
      "default",
    )
    .option("--name <name>", "this controller's name in leader election and the audit log")
    .option(
      "--config <file>",
      "config file (default $SKIFF_HOME/skiff.yaml when present): its `controller:` section",
    )
    .option("--log-format <format>", LOG_FORMAT_HELP)
    .action(async (flags: ControllerCliOptions & { config?: string }, cmd: Command) => {
      const { databaseUrl: url, databaseSource, port, slots, ...opts } = await controllerSettings(flags, cmd);
      const {
        Controller,
        createComposeScaler,
        createEmbeddedScaler,
        createProcessScaler,
        mintWorkerToken,
        startControllerServer,
      } = await import("@skiff/controller");
      const { openStore } = await import("@skiff/store");
      const k8s = opts.scaler === "kubernetes" ? await import("@skiff/controller/kubernetes") : null;
      const holder = opts.name ?? `controller@${hostname()}:${process.pid}`;
      const { logger, release } = createLogger("skiff-controller", { format: logFormat(flags.logFormat) });
      // The controller writes audit entries too (leadership changes): sealed with the API's key.
      const { loadAuditKey, AUDIT_KEY_ENV } = await import("@skiff/api");
      let auditKey: ReturnType<typeof loadAuditKey>;
      try {
        auditKey = loadAuditKey(skiffHome(), process.env, false);
      } catch (err) {
        release();
        throw new UsageError((err as Error).message);
      }
      if (!auditKey)
        logger.warn(
          `no audit key (${AUDIT_KEY_ENV}, or audit.key in SKIFF_HOME): the audit entries this controller writes are not sealed, and \`skiff audit verify\` will name them; give it the API's key`,
        );
      const store = await openStore({
        databaseUrl: url,
        applicationName: "skiff-controller",
        poolSize: 4,
        auditKey: auditKey?.key ?? null,
      }).catch((err: unknown) => {
        release();
        throw databaseUnreachable(err, url, databaseSource) ?? err;
      });
      const apiUrl = opts.apiUrl ?? "http://127.0.0.1:8787";
      const token = await mintWorkerToken(store, `controller-workers-${opts.scaler}`, holder);
      const onEvent = (msg: string, fields: Record<string, unknown>) => logger.info(fields, msg);
      const workRoot = join(skiffHome(), "work");
      // Compose and Kubernetes workers get their API URL and agent token from their own
      // deployment (compose file, Secret); this controller only changes how many there are.
      const scalers: Record<string, () => Scaler> = {
        process: () =>
          createProcessScaler({
            apiUrl,
            token,
            namePrefix: `${hostname()}-w`,
            // The workers run this very binary (the checkout through tsx, or the image's bundle).
            command: [process.execPath, ...process.execArgv, process.argv[1] ?? "skiff", "worker"],
            extraArgs: [
              "--slots",
              String(slots),
              "--work-dir",
              workRoot,
              "--labels",
              `queue=${opts.queues.join(",")}`,
            ],
            onEvent,
          }),
        embedded: () =>
          createEmbeddedScaler(
            { apiUrl, token, slots, workRoot, labels: { queue: opts.queues.join(",") } },
            `${hostname()}-embedded`,
            logger,
          ),
        compose: () =>
          createComposeScaler({
            file: opts.composeFile?.length ? opts.composeFile : "docker-compose.local.yml",
            project: opts.composeProject ?? "skiff-local",
            service: opts.composeService ?? "worker",
            onEvent,
          }),
        kubernetes: () =>
          // biome-ignore lint/style/noNonNullAssertion: loaded above exactly when this scaler is chosen
          k8s!.createKubernetesScaler({
            namespace: opts.namespace ?? "skiff",
            deployment: opts.deployment ?? "skiff-worker",
            kubeconfig: opts.kubeconfig,
            onEvent,
          }),
      };
      const make = scalers[opts.scaler];
      if (!make) throw new UsageError(`unknown scaler ${opts.scaler}`);
      const scaler = make();
      // Its decisions, drains and audit entries go into the event log in their own transactions;
      // the API replicas relay them to consoles.
      const controller = new Controller(store, scaler, {
        holder,
        tickMs: 1_000,
        slotsPerWorker: slots,
        decide: { upCooldownMs: 2_000, downCooldownMs: 15_000, downStableMs: 15_000 },
        log: (msg, fields) => logger.info(fields ?? {}, msg),
        queues: opts.queues,
      });
      controller.start();
      const server = await startControllerServer(controller, opts.host, port).catch(async (err: unknown) => {
        await controller.stop();
        await scaler.close();
        await store.close();
        release();
        throw portInUse(err, opts.host, port, "--port") ?? err;
      });
      process.stderr.write(
        `skiff controller ${holder}: scaler ${opts.scaler}, workers talk to ${apiUrl}, status on ${server.url}/snapshot\n`,
      );
      release();
      await onShutdownSignals("skiff controller", async () => {
        await controller.stop();
        await scaler.close();
        await server.close();
        await store.close();
      });
    });
}
