#!/usr/bin/env node
// `pnpm local:up`: the split stack in Docker (docker-compose.local.yml). Builds the images, starts
// postgres, redis and the API, copies the admin token out, mints the workers' agent token once
// (kept in .skiff/local/agent.token), starts the controller, which then scales the workers, and
// prints where everything is.
import { statSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { compose, composeCommand } from "./local-compose.mjs";

const root = new URL("..", import.meta.url).pathname;
process.chdir(root);
const API = "http://127.0.0.1:8787";
const dir = join(root, ".skiff/local");

async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`local: ${what} did not happen within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function saveSecret(name, value) {
  const file = join(dir, name);
  await writeFile(file, `${value}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}

const cmd = composeCommand();
await mkdir(dir, { recursive: true, mode: 0o700 });
let dockerGid = "0";
try {
  dockerGid = String(statSync("/var/run/docker.sock").gid);
} catch {
  // Docker Desktop and rootless engines: compose reports the real problem below
}
const env = { ...process.env, DOCKER_GID: dockerGid };

compose(cmd, ["build", "api", "controller"], { env });
compose(cmd, ["up", "-d", "postgres", "redis", "api"], { env });
await until("the API becoming ready", async () => (await fetch(`${API}/readyz`)).ok, 180_000);

const admin = compose(cmd, ["exec", "-T", "api", "cat", "/var/lib/skiff/admin.token"], {
  env,
  capture: true,
}).trim();
const adminFile = await saveSecret("admin.token", admin);

let agent = (await readFile(join(dir, "agent.token"), "utf8").catch(() => "")).trim();
if (agent) {
  const res = await fetch(`${API}/v1/whoami`, { headers: { authorization: `Bearer ${agent}` } });
  if (!res.ok) agent = ""; // a fresh database (after `local:down --volumes`): mint again
}
if (!agent) {
  const res = await fetch(`${API}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "compose-workers", role: "agent" }),
  });
  if (res.status !== 201 && res.status !== 200) {
    console.error(`local: creating the workers' agent token failed: ${res.status} ${await res.text()}`);
    process.exit(1);
  }
  agent = (await res.json()).token;
  await saveSecret("agent.token", agent);
}

compose(cmd, ["up", "-d", "controller"], { env: { ...env, SKIFF_AGENT_TOKEN: agent } });

process.stdout.write(
  [
    "",
    "skiff local stack is up (compose project skiff-local)",
    `  API          ${API}   (health: ${API}/readyz)`,
    "  controller   http://127.0.0.1:8788/snapshot   (scales the `worker` service)",
    `  admin token  ${adminFile}`,
    "  console      SKIFF_URL=http://127.0.0.1:8787 SKIFF_TOKEN=$(cat .skiff/local/admin.token) pnpm tui",
    "  a job        SKIFF_TOKEN=$(cat .skiff/local/admin.token) pnpm skiff jobs submit -f template/deploy-root/jobs/hello.yaml --follow",
    "  workers      SKIFF_TOKEN=$(cat .skiff/local/admin.token) pnpm skiff fleet scale 2",
    "  stop         pnpm local:down   (add -- --volumes to drop the database)",
    "",
  ].join("\n"),
);
