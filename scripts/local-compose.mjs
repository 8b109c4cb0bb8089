// Shared by local-up.mjs and local-down.mjs: the compose CLI and the project they drive.
import { spawnSync } from "node:child_process";

export const PROJECT = "skiff-local";
export const FILE = "docker-compose.local.yml";

/** `docker compose` (v2) when it answers, else `docker-compose` (v1); exits 2 saying what to install. */
export function composeCommand() {
  for (const cmd of [["docker", "compose"], ["docker-compose"]]) {
    const r = spawnSync(cmd[0], [...cmd.slice(1), "version"], { stdio: "ignore" });
    if (r.status === 0) return cmd;
  }
  console.error("local: no compose CLI; install the Docker compose plugin or docker-compose");
  process.exit(2);
}

/** Runs compose for the local project; exits with its status when it fails. */
export function compose(cmd, args, { env = process.env, capture = false } = {}) {
  const r = spawnSync(cmd[0], [...cmd.slice(1), "-p", PROJECT, "-f", FILE, ...args], {
    env,
    stdio: capture ? ["ignore", "pipe", "inherit"] : "inherit",
    encoding: "utf8",
  });
  if (r.status !== 0) {
    console.error(`local: \`${cmd.join(" ")} ${args.join(" ")}\` failed`);
    process.exit(r.status ?? 1);
  }
  return r.stdout ?? "";
}
