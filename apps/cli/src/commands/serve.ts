import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { RunningApi } from "@skiff/api";
import type { Command } from "commander";
import type { ConfigFor } from "../config.ts";
import {
  agentTimingFromEnv,
  busPrefix,
  databaseUrl,
  onShutdownSignals,
  parsePort,
  redisUrl,
  skiffHome,
  stopGuarded,
  UsageError,
} from "../env.ts";
import { createLogger, LOG_FORMAT_HELP, type LogFormat, logFormat } from "../log.ts";
import { checkPortFree, databaseUnreachable, portInUse } from "../startup-errors.ts";
import type { EmbeddedFleet } from "./embedded.ts";

interface ServeOptions {
  config?: string;
  tui?: boolean;
  host: string;
  port: string;
  workers?: string;
  slots?: string;
  sandbox?: string;
  logFormat?: string;
}

function count(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 64)
    throw new UsageError(`${option} must be a whole number from 0 to 64, got "${value}"`);
  return n;
}

/** A path as a user would type it: relative when under the working directory, else absolute. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

function describeStartup(mode: string, running: RunningApi, home: string): string {
  const db =
    running.store.kind === "pg"
      ? "PostgreSQL (DATABASE_URL)"
      : `PGlite, embedded, in ${shown(`${home}/data`)}`;
  const bus = running.bus.kind === "redis" ? "Redis (REDIS_URL)" : "in-process";
  const token = shown(running.adminTokenFile);
  return [
    `skiff ${mode}: API listening on ${running.url}`,
    `  database     ${db}`,
    `  bus          ${bus}`,
    `  admin token  ${token}${running.createdAdminToken ? " (created now, mode 0600)" : ""}`,
    `  audit key    ${running.auditKeySource ? shown(running.auditKeySource) : "none: audit entries are not sealed"}`,
    `  try          curl -H "Authorization: Bearer $(cat ${token})" ${running.url}/v1/whoami`,
    "",
  ].join("\n");
}

export interface ServeSettings {
  home: string;
  configFile: string | null;
  /** The config file's `api:` section. */
  api: NonNullable<ConfigFor<"api">["api"]>;
  host: string;
  port: number;
  databaseUrl?: string;
  /** Where the database URL came from, for messages: `DATABASE_URL` or the config file's field. */
  databaseSource: string;
  redisUrl?: string;
  busPrefix: string;
  agentTiming: ReturnType<typeof agentTimingFromEnv>;
  workers?: number;
  slots: number;
  sandbox: "auto" | "bwrap" | "docker";
  logFormat: LogFormat;
}

/**
 * What `skiff up` / `skiff api` run with: a flag wins over the environment (DATABASE_URL, REDIS_URL),
 * which wins over the config file's `database:`, `redis:`, `api:` (and for up `up:`) sections.
 */
export async function serveSettings(
  mode: "up" | "api",
  flags: ServeOptions,
  cmd: Command,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServeSettings> {
  const home = skiffHome(env);
  const { loadConfig } = await import("../config.ts");
  const { file: configFile, config } = loadConfig(flags.config, home, env, mode);
  const up = "up" in config ? config.up : undefined;
  // A flag given on the command line wins over the config file, which wins over the flag's default.
  const given = (name: string) => cmd.getOptionValueSource(name) === "cli";
  const workers = flags.workers ?? (up?.workers === undefined ? undefined : String(up.workers));
  const slots = given("slots") ? flags.slots : String(up?.slots ?? flags.slots ?? "2");
  const sandbox = (given("sandbox") ? flags.sandbox : (up?.sandbox ?? flags.sandbox)) ?? "auto";
  const dbUrl = databaseUrl(env) ?? config.database?.url;
  const busUrl = redisUrl(env) ?? config.redis?.url;
  const port = parsePort(given("port") ? flags.port : String(config.api?.port ?? flags.port));
  if (mode === "api" && (!dbUrl || !busUrl)) {
    throw new UsageError(
      "`skiff api` is the split-mode API and needs DATABASE_URL and REDIS_URL; for one process with embedded storage run `skiff up`",
    );
  }
  if (!["auto", "bwrap", "docker"].includes(sandbox)) {
    throw new UsageError(`--sandbox must be bwrap, docker or auto, got "${sandbox}"`);
  }
  return {
    home,
    configFile,
    api: config.api ?? {},
    host: given("host") ? flags.host : (config.api?.host ?? flags.host),
    port,
    databaseUrl: dbUrl,
    databaseSource: databaseUrl(env) ? "DATABASE_URL" : `database.url in ${configFile}`,
    redisUrl: busUrl,
    busPrefix: busPrefix(env),
    agentTiming: agentTimingFromEnv(env),
    workers: workers === undefined ? undefined : count(workers, "--workers", 2),
    slots: Math.max(1, count(slots, "--slots", 2)),
    sandbox: sandbox as ServeSettings["sandbox"],
    logFormat: logFormat(flags.logFormat, env),
  };
}

async function serve(mode: "up" | "api", flags: ServeOptions, cmd: Command): Promise<void> {
  // Loaded here, not at the top: every other `skiff` command starts without the server stack.
  // The fleet's modules (controller, worker) load while the API opens its database; the API does not
  // wait for them, so it is ready as soon as it listens and the workers register right after.
  const embedded = mode === "up" ? import("./embedded.ts") : null;
  embedded?.catch(() => {}); // awaited below; this only keeps an early failure from going unhandled
  const { startApiServer } = await import("@skiff/api");
  const settings = await serveSettings(mode, flags, cmd);
  const { home, configFile, slots, sandbox } = settings;
  await checkPortFree(settings.host, settings.port, "--port");
  // With the console attached, logs go to a file so they never print over the screen.
  const wantsConsole =
    mode === "up" && flags.tui !== false && process.stdout.isTTY === true && process.stdin.isTTY === true;
  // A terminal too small to draw on (a pseudo-terminal with no size, say) runs headless instead of
  // crashing the console and, with it, the node.
  const { terminalTooSmall } = wantsConsole
    ? await import("../tui/index.ts")
    : { terminalTooSmall: () => null };
  const tooSmall = wantsConsole ? terminalTooSmall() : null;
  const attach = wantsConsole && tooSmall === null;
  const logFile = attach ? join(home, "logs", `skiff-${mode}.log`) : undefined;
  // A log file is not a terminal: JSON lines there unless chosen otherwise.
  const format = logFile ? logFormat(flags.logFormat, process.env, false) : settings.logFormat;
  const { logger, release } = createLogger(`skiff-${mode}`, { format, file: logFile });
  const started = Date.now();
  const running = await startApiServer(
    {
      ...settings.api,
      host: settings.host,
      port: settings.port,
      skiffHome: home,
      databaseUrl: settings.databaseUrl,
      redisUrl: settings.redisUrl,
      busPrefix: settings.busPrefix,
      ...settings.agentTiming,
    },
    logger,
  ).catch((err: unknown) => {
    release();
    throw (
      portInUse(err, settings.host, settings.port, "--port") ??
      (settings.databaseUrl
        ? databaseUnreachable(err, settings.databaseUrl, settings.databaseSource)
        : null) ??
      err
    );
  });
  // The banner is written in one piece, and the log lines held until then follow it.
  let banner = describeStartup(mode, running, home);
  if (configFile) banner += `  config       ${shown(configFile)}\n`;
  let fleet: EmbeddedFleet | null = null;
  if (mode === "up" && embedded) {
    const { startEmbeddedFleet } = await embedded;
    const started = await startEmbeddedFleet({
      apiUrl: running.url,
      store: running.store,
      home,
      workers: settings.workers,
      slots,
      sandbox,
      logger,
    }).catch((err: Error) => ({ problem: err.message }));
    let line: string;
    if ("problem" in started) {
      line = `none started: ${started.problem.replace(/\n/g, "\n               ")}\n               jobs queue until a worker registers (\`skiff worker\`)`;
    } else {
      fleet = started;
      const stored = await running.store.getFleet();
      const size = stored.mode === "manual" ? `${stored.replicas}` : `auto ${stored.min}-${stored.max}`;
      line = `${size} embedded (fleet setting; \`PUT /v1/fleet\` rescales), ${slots} slots each, sandbox ${started.sandbox}`;
    }
    const console = attach
      ? `attaching now (logs in ${shown(logFile ?? "")}); q asks, then stops skiff up (Ctrl-C at once); D detaches and leaves it running`
      : `pnpm tui (or skiff tui --api-url ${running.url}) in another terminal${tooSmall ? ` (not here: ${tooSmall})` : ""}`;
    banner += `  workers      ${line}\n  console      ${console}\n\n`;
  }
  process.stderr.write(banner);
  release();
  logger.info(
    { url: running.url, ms: Date.now() - started, store: running.store.kind, bus: running.bus.kind },
    "ready",
  );
  const shutdown = async () => {
    // Workers first, so running jobs finish or are canceled and reported while the API is still up.
    await fleet?.stop();
    await running.stop();
  };
  if (attach) {
    const { runTui } = await import("../tui/index.ts");
    const token = readFileSync(running.adminTokenFile, "utf8").trim();
    // Between the console removing its signal handlers and the stop installing its own, SIGINT
    // would have no listener and its default action would kill us (exit 130) mid-handover: a
    // repeat of the signal that closed the console lands there. This one bridges the gap.
    const bridge = () => {};
    process.on("SIGINT", bridge);
    process.on("SIGTERM", bridge);
    const unbridge = () => {
      process.off("SIGINT", bridge);
      process.off("SIGTERM", bridge);
    };
    const { detached } = await runTui({
      baseUrl: running.url,
      token,
      confirmQuit: `Quit and stop skiff ${mode} (its workers drain and exit)?`,
      embedded: true,
    });
    if (detached) {
      process.stderr.write(
        `skiff ${mode}: console detached; still serving at ${running.url} (logs in ${shown(logFile ?? "")}).\n` +
          `  attach again: skiff tui --api-url ${running.url}   stop: Ctrl-C or SIGTERM\n`,
      );
      const signalled = onShutdownSignals(`skiff ${mode}`, shutdown);
      unbridge();
      await signalled;
    } else {
      process.stderr.write(`skiff ${mode}: console closed; draining workers and stopping\n`);
      // The console's own signal handlers are gone now; the stop is guarded as a signalled one is.
      const stopping = stopGuarded(`skiff ${mode}`, shutdown);
      unbridge();
      await stopping;
    }
  } else {
    await onShutdownSignals(`skiff ${mode}`, shutdown);
  }
  logger.info("stopped; data kept");
}

export function registerServe(program: Command): void {
  program
    .command("up")
    .description(
      "run the combined node: API, reaper and embedded workers; embedded storage unless DATABASE_URL",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "8787")
    .option(
      "--workers <n>",
      "set the fleet to this many embedded workers (default: the stored fleet setting, initially 2)",
    )
    .option("--slots <n>", "jobs each embedded worker runs at once", "2")
    .option("--sandbox <driver>", "bwrap, docker or auto (bwrap, then docker)", "auto")
    .option("--no-tui", "run headless, logs on stdout (the console attaches when stdout is a terminal)")
    .option("--config <file>", "config file (default $SKIFF_HOME/skiff.yaml when present)")
    .option("--log-format <format>", LOG_FORMAT_HELP)
    .action((opts: ServeOptions, cmd: Command) => serve("up", opts, cmd));
  program
    .command("api")
    .description("run an API replica for split mode (needs DATABASE_URL and REDIS_URL)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "8787")
    .option("--config <file>", "config file (default $SKIFF_HOME/skiff.yaml when present)")
    .option("--log-format <format>", LOG_FORMAT_HELP)
    .action((opts: ServeOptions, cmd: Command) => serve("api", opts, cmd));
}
