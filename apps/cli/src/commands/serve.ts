import { relative } from "node:path";
import { type RunningApi, startApiServer } from "@skiff/api";
import type { Command } from "commander";
import {
  busPrefix,
  createLogger,
  databaseUrl,
  onShutdownSignals,
  parsePort,
  redisUrl,
  skiffHome,
  UsageError,
} from "../env.ts";

interface ServeOptions {
  host: string;
  port: string;
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
    `  try          curl -H "Authorization: Bearer $(cat ${token})" ${running.url}/v1/whoami`,
    "",
  ].join("\n");
}

async function serve(mode: "up" | "api", opts: ServeOptions): Promise<void> {
  const home = skiffHome();
  const port = parsePort(opts.port);
  if (mode === "api" && (!databaseUrl() || !redisUrl())) {
    throw new UsageError(
      "`skiff api` is the split-mode API and needs DATABASE_URL and REDIS_URL; for one process with embedded storage run `skiff up`",
    );
  }
  const logger = createLogger(`skiff-${mode}`);
  const started = Date.now();
  const running = await startApiServer(
    {
      host: opts.host,
      port,
      skiffHome: home,
      databaseUrl: databaseUrl(),
      redisUrl: redisUrl(),
      busPrefix: busPrefix(),
    },
    logger,
  );
  process.stderr.write(describeStartup(mode, running, home));
  if (mode === "up") {
    process.stderr.write(
      "  workers      none in this build: embedded workers and the controller land with issues 4 and 5;\n" +
        "               jobs queue until a worker registers\n" +
        "  console      `skiff tui` lands with issue 6\n\n",
    );
  }
  logger.info(
    { url: running.url, ms: Date.now() - started, store: running.store.kind, bus: running.bus.kind },
    "ready",
  );
  await onShutdownSignals(`skiff ${mode}`, () => running.stop());
  logger.info("stopped; data kept");
}

export function registerServe(program: Command): void {
  program
    .command("up")
    .description(
      "run the combined node: API, reaper and (later) embedded workers; embedded storage unless DATABASE_URL",
    )
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "8787")
    .option("--no-tui", "run headless (the console is not attached in this build either way)")
    .action((opts: ServeOptions) => serve("up", opts));
  program
    .command("api")
    .description("run an API replica for split mode (needs DATABASE_URL and REDIS_URL)")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on", "8787")
    .action((opts: ServeOptions) => serve("api", opts));
}
