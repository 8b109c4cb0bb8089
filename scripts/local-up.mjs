#!/usr/bin/env node
// `pnpm local:up`: the split stack in Docker (docker-compose.local.yml and its network override).
// Checks the ports and images first, builds the skiff images, starts postgres, redis and the API,
// copies the admin token out, mints the workers' agent token once (kept beside it), starts the
// controller, which then scales the workers, and prints where everything is. Its settings are
// environment variables: see the compose file's header and docs/operations.md, "The local stack".
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { compose, composeCommand, composeLine, root, settings } from "./local-compose.mjs";

process.chdir(root);
const s = settings();
const cmd = composeCommand();
const API = `http://127.0.0.1:${s.ports.api}`;
const CONTROLLER = `http://127.0.0.1:${s.ports.controller}`;
const say = (line) => console.log(`local: ${line}`);

async function until(what, check, timeoutMs, next) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      console.error(`local: ${what} did not happen within ${timeoutMs / 1000} s`);
      console.error(`local: ${next}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

const portFree = (port) =>
  new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });

// A port another program holds would surface minutes later as a container that keeps restarting.
const VARS = {
  api: "SKIFF_LOCAL_API_PORT",
  controller: "SKIFF_LOCAL_CONTROLLER_PORT",
  postgres: "SKIFF_LOCAL_POSTGRES_PORT",
  redis: "SKIFF_LOCAL_REDIS_PORT",
};
const running = compose(cmd, s, ["ps", "-q"], { capture: true }).trim() !== "";
if (!running) {
  for (const [what, port] of Object.entries(s.ports)) {
    if (!(await portFree(port))) {
      console.error(
        `local: port ${port} (the ${what}'s) is in use on 127.0.0.1; set ${VARS[what]} to a free one, or stop what holds it`,
      );
      process.exit(2);
    }
  }
}

// Every image the stack starts from, present or pullable; otherwise one message that says what to set.
const images = [
  [
    "SKIFF_BASE_IMAGE",
    process.env.SKIFF_BASE_IMAGE || "node:20-bookworm-slim",
    "the skiff images' base (Node 20)",
  ],
  ["SKIFF_POSTGRES_IMAGE", process.env.SKIFF_POSTGRES_IMAGE || "postgres:16-bookworm", "PostgreSQL"],
  ["SKIFF_REDIS_IMAGE", process.env.SKIFF_REDIS_IMAGE || "redis:7-bookworm", "Redis"],
];
for (const [name, image, what] of images) {
  if (spawnSync("docker", ["image", "inspect", image], { stdio: "ignore" }).status === 0) continue;
  say(`pulling ${image} (${what})`);
  const pulled = spawnSync("docker", ["pull", image], {
    stdio: ["ignore", "inherit", "pipe"],
    encoding: "utf8",
  });
  if (pulled.status === 0) continue;
  const why = (pulled.stderr ?? "").trim().split("\n").pop() || `docker pull exited ${pulled.status}`;
  console.error(
    [
      `local: cannot pull ${image}, the image for ${what}: ${why}`,
      `local: set ${name} to an image this engine has (\`docker images\`), or build stand-ins from this`,
      "local: machine's own binaries with `sh scripts/build-local-images.sh` and run:",
      "local:   SKIFF_BASE_IMAGE=skiff-local-base:latest SKIFF_POSTGRES_IMAGE=skiff-local-postgres:latest \\",
      "local:   SKIFF_REDIS_IMAGE=skiff-local-redis:latest SKIFF_IMAGE_DEPS=context pnpm local:up",
    ].join("\n"),
  );
  process.exit(2);
}

const deps = process.env.SKIFF_IMAGE_DEPS || "install";
if (deps !== "install" && deps !== "context") {
  console.error(`local: SKIFF_IMAGE_DEPS must be install or context, got "${deps}"`);
  process.exit(2);
}
// One directory of contents per project: two projects' builds never share (and clobber) one.
const buildDir = s.project === "skiff-local" ? "deploy/image/.build" : `deploy/image/.build-${s.project}`;
if (deps === "context") {
  say(`assembling the image's contents on this host (node deploy/image/prepare.mjs --offline ${buildDir})`);
  const r = spawnSync("node", ["deploy/image/prepare.mjs", "--offline", buildDir], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error("local: deploy/image/prepare.mjs --offline failed; run `pnpm install` first");
    process.exit(r.status ?? 1);
  }
}

let dockerGid = "0";
try {
  dockerGid = String(statSync("/var/run/docker.sock").gid);
} catch {
  // Docker Desktop and rootless engines: compose reports the real problem below
}
const env = { ...s.env, DOCKER_GID: dockerGid, SKIFF_IMAGE_DEPS: deps, SKIFF_BUILD_DIR: buildDir };

say(`building the skiff images (project ${s.project}, ${s.network} network)`);
compose(cmd, s, ["build", "api", "controller"], {
  env,
  hint:
    deps === "install"
      ? "the build installs packages with pnpm; where it cannot reach the registry, set SKIFF_IMAGE_DEPS=context to use this checkout's"
      : undefined,
});
compose(cmd, s, ["up", "-d", "postgres", "redis", "api"], { env });
await until(
  "the API becoming ready",
  async () => (await fetch(`${API}/readyz`)).ok,
  180_000,
  `see why with \`${composeLine(cmd, s)} logs api postgres redis\``,
);

const admin = compose(cmd, s, ["exec", "-T", "api", "cat", "/var/lib/skiff/admin.token"], {
  env,
  capture: true,
}).trim();
await mkdir(s.dir, { recursive: true, mode: 0o700 });
async function saveSecret(name, value) {
  const file = join(s.dir, name);
  await writeFile(file, `${value}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return relative(root, file);
}
const adminFile = await saveSecret("admin.token", admin);

let agent = (await readFile(join(s.dir, "agent.token"), "utf8").catch(() => "")).trim();
if (agent) {
  const res = await fetch(`${API}/v1/whoami`, { headers: { authorization: `Bearer ${agent}` } });
  // 401: unknown to this database (after `local:down --volumes`): mint again. An agent token that
  // is known gets 403 here (whoami is not an agent's route), and is kept.
  if (res.status === 401) agent = "";
}
if (!agent) {
  const res = await fetch(`${API}/v1/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `${s.project}-workers`, role: "agent" }),
  });
  if (res.status !== 201 && res.status !== 200) {
    console.error(`local: creating the workers' agent token failed: ${res.status} ${await res.text()}`);
    process.exit(1);
  }
  agent = (await res.json()).token;
  await saveSecret("agent.token", agent);
}

compose(cmd, s, ["up", "-d", "controller"], { env: { ...env, SKIFF_AGENT_TOKEN: agent } });
await until(
  "the controller becoming healthy",
  async () => (await fetch(`${CONTROLLER}/healthz`)).ok,
  120_000,
  `see why with \`${composeLine(cmd, s)} logs controller\``,
);

const token = `SKIFF_URL=${API} SKIFF_TOKEN=$(cat ${adminFile})`;
// local:down must be given the same settings, or it stops the default project instead.
const settingsPrefix = Object.keys(s.env)
  .filter((k) => k.startsWith("SKIFF_LOCAL_") && process.env[k] !== undefined && process.env[k] !== "")
  .map((k) => `${k}=${s.env[k]}`)
  .join(" ");
const withSettings = (command) => (settingsPrefix ? `${settingsPrefix} ${command}` : command);
process.stdout.write(
  [
    "",
    `skiff local stack is up (compose project ${s.project}, ${s.network} network)`,
    `  API          ${API}   (health: ${API}/readyz)`,
    `  controller   ${CONTROLLER}/snapshot   (scales the \`worker\` service)`,
    `  admin token  ${adminFile}`,
    `  console      ${token} pnpm tui`,
    `  a job        ${token} pnpm skiff jobs submit -f template/deploy-root/jobs/hello.yaml --follow`,
    `  workers      ${token} pnpm skiff fleet scale 2`,
    `  compose      ${withSettings(`${composeLine(cmd, s)} ps`)}`,
    `  stop         ${withSettings("pnpm local:down")}   (add -- --volumes to drop the database and the tokens)`,
    "",
  ].join("\n"),
);
