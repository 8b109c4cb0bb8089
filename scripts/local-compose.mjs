// Shared by local-up.mjs and local-down.mjs: the settings of the local stack (from the environment),
// the compose CLI and the files and project it drives.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export const root = new URL("..", import.meta.url).pathname;

const fail = (message) => {
  console.error(`local: ${message}`);
  process.exit(2);
};

/** Whether the engine has Docker's default bridge network (`dockerd --bridge=none` has none). */
function engineHasBridge() {
  const r = spawnSync("docker", ["network", "inspect", "bridge"], { stdio: "ignore" });
  return r.status === 0;
}

function port(name, fallback) {
  const text = process.env[name] ?? String(fallback);
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535)
    fail(`${name} must be a port number (1-65535), got "${text}"`);
  return n;
}

/**
 * The stack's settings, each from its environment variable or its default. The network mode is
 * `bridge` unless SKIFF_LOCAL_NETWORK says otherwise, or the engine has no bridge network, where
 * `host` is the only mode that can start.
 */
export function settings({ quiet = false } = {}) {
  const project = process.env.SKIFF_LOCAL_PROJECT || "skiff-local";
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(project))
    fail(`SKIFF_LOCAL_PROJECT must be lowercase letters, digits, '-' and '_', got "${project}"`);
  let network = process.env.SKIFF_LOCAL_NETWORK;
  if (network === undefined || network === "") {
    network = "bridge";
    if (!engineHasBridge()) {
      network = "host";
      if (!quiet)
        console.log(
          "local: this Docker engine has no bridge network; using the host's (SKIFF_LOCAL_NETWORK=host), every service on 127.0.0.1",
        );
    }
  }
  if (network !== "bridge" && network !== "host")
    fail(`SKIFF_LOCAL_NETWORK must be bridge or host, got "${network}"`);
  const ports = {
    api: port("SKIFF_LOCAL_API_PORT", 8787),
    controller: port("SKIFF_LOCAL_CONTROLLER_PORT", 8788),
    postgres: port("SKIFF_LOCAL_POSTGRES_PORT", 5433),
    redis: port("SKIFF_LOCAL_REDIS_PORT", 6380),
  };
  const files = ["docker-compose.local.yml", `docker-compose.local.${network}.yml`];
  // Where local:up keeps the tokens it copies out; one directory per project.
  const dir = join(root, project === "skiff-local" ? ".skiff/local" : `.skiff/local-${project}`);
  // What the compose files read: the choices made here, passed on explicitly.
  const env = {
    ...process.env,
    SKIFF_LOCAL_PROJECT: project,
    SKIFF_LOCAL_NETWORK: network,
    SKIFF_LOCAL_API_PORT: String(ports.api),
    SKIFF_LOCAL_CONTROLLER_PORT: String(ports.controller),
    SKIFF_LOCAL_POSTGRES_PORT: String(ports.postgres),
    SKIFF_LOCAL_REDIS_PORT: String(ports.redis),
  };
  return { project, network, ports, files, dir, env };
}

/** `docker compose` (v2) when it answers, else `docker-compose` (v1); exits 2 saying what to install. */
export function composeCommand() {
  for (const cmd of [["docker", "compose"], ["docker-compose"]]) {
    const r = spawnSync(cmd[0], [...cmd.slice(1), "version"], { stdio: "ignore" });
    if (r.status === 0) return cmd;
  }
  fail("no compose CLI; install the Docker compose plugin or docker-compose");
}

/** The compose invocation for the stack, as a user would type it. */
export function composeLine(cmd, s) {
  return [...cmd, "-p", s.project, ...s.files.flatMap((f) => ["-f", f])].join(" ");
}

/**
 * Runs compose for the stack; when it fails, prints `hint` (if any) and exits with its status.
 * `capture` returns its stdout instead of showing it.
 */
export function compose(cmd, s, args, { env = s.env, capture = false, hint } = {}) {
  const r = spawnSync(
    cmd[0],
    [...cmd.slice(1), "-p", s.project, ...s.files.flatMap((f) => ["-f", f]), ...args],
    {
      cwd: root,
      env,
      stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit",
      encoding: "utf8",
    },
  );
  if (r.status !== 0) {
    console.error(`local: \`${composeLine(cmd, s)} ${args.join(" ")}\` failed`);
    if (hint) console.error(`local: ${hint}`);
    process.exit(r.status ?? 1);
  }
  return r.stdout ?? "";
}
