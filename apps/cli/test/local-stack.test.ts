import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { allOf, describeWith, type ServiceGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freePort, runCli } from "./cli.ts";
import { root } from "./deployments.ts";
import { docker, dockerCliGate } from "./image.ts";
import { TmuxSession, tmuxGate } from "./tui/tmux.ts";

/**
 * `pnpm local:up` end to end, as a developer runs it, on this machine: the three images it pulls are
 * stand-ins built from the machine's own binaries (scripts/build-local-images.sh; nothing can be
 * pulled here), the engine has no bridge network so the stack runs on the host's, every port and the
 * project name are the test's own. It builds the images, starts the stack, a worker container that
 * the controller started runs a job in bubblewrap, the console attaches, and `pnpm local:down
 * --volumes` leaves no container, volume, network or token behind.
 */

const exec = promisify(execFile);
const PROJECT = `skiff-e2e-${process.pid}`;
const STANDINS = {
  SKIFF_BASE_IMAGE: "skiff-local-base:latest",
  SKIFF_POSTGRES_IMAGE: "skiff-local-postgres:latest",
  SKIFF_REDIS_IMAGE: "skiff-local-redis:latest",
  SKIFF_IMAGE_DEPS: "context",
};

async function composeGate(): Promise<ServiceGate> {
  try {
    await exec("docker-compose", ["version"], { timeout: 20_000 });
    return { available: true, missing: null };
  } catch {
    return {
      available: false,
      missing: "`docker-compose` is missing: apt-get install docker-compose (see .ci/run)",
    };
  }
}

interface Run {
  code: number | null;
  out: string;
}

/** Runs one of the package's scripts (`node scripts/X.mjs`) to completion, output captured. */
function script(
  name: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  timeoutMs = 900_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "scripts", name), ...args], { cwd: root, env });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      out += d;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${name} did not finish in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** What the engine still holds for a compose project: containers, volumes, networks. */
async function leftovers(project: string): Promise<string[]> {
  const label = `label=com.docker.compose.project=${project}`;
  const lines = async (args: string[]) => (await docker(args)).split("\n").filter(Boolean);
  return [
    ...(await lines(["ps", "-a", "-q", "--filter", label])).map((c) => `container ${c}`),
    ...(await lines(["volume", "ls", "-q", "--filter", label])).map((v) => `volume ${v}`),
    ...(await lines(["network", "ls", "-q", "--filter", label])).map((n) => `network ${n}`),
  ];
}

describeWith(allOf(await dockerCliGate(), await composeGate(), tmuxGate()), "pnpm local:up", () => {
  const ports = { api: 0, controller: 0, postgres: 0, redis: 0 };
  let env: NodeJS.ProcessEnv = {};
  const stateDir = join(root, `.skiff/local-${PROJECT}`);

  beforeAll(async () => {
    await exec("sh", [join(root, "scripts/build-local-images.sh")], { timeout: 300_000 });
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
    env = {
      ...process.env,
      ...STANDINS,
      SKIFF_LOCAL_PROJECT: PROJECT,
      SKIFF_LOCAL_NETWORK: "host",
      SKIFF_LOCAL_API_PORT: String(ports.api),
      SKIFF_LOCAL_CONTROLLER_PORT: String(ports.controller),
      SKIFF_LOCAL_POSTGRES_PORT: String(ports.postgres),
      SKIFF_LOCAL_REDIS_PORT: String(ports.redis),
    };
  }, 400_000);

  afterAll(async () => {
    // Whatever a failed test left: the same command a developer would run.
    if ((await leftovers(PROJECT)).length > 0) await script("local-down.mjs", env, ["--volumes"], 300_000);
  }, 320_000);

  it("says which variable to set when an image cannot be pulled, before building anything", async () => {
    // A registry on a closed loopback port: the pull fails at once, and nothing leaves this machine.
    const r = await script(
      "local-up.mjs",
      { ...env, SKIFF_REDIS_IMAGE: "127.0.0.1:9/skiff/redis:none" },
      [],
      120_000,
    );
    expect(r.code, r.out).toBe(2);
    expect(r.out).toContain("cannot pull 127.0.0.1:9/skiff/redis:none, the image for Redis");
    expect(r.out).toContain("set SKIFF_REDIS_IMAGE to an image this engine has");
    expect(r.out).toContain("scripts/build-local-images.sh");
    expect(await leftovers(PROJECT)).toEqual([]);
  });

  it("says which variable to set when a port is taken", async () => {
    const held = createServer();
    await new Promise<void>((resolve) => held.listen(ports.postgres, "127.0.0.1", resolve));
    try {
      const r = await script("local-up.mjs", env, [], 120_000);
      expect(r.code, r.out).toBe(2);
      expect(r.out).toContain(`port ${ports.postgres} (the postgres's) is in use on 127.0.0.1`);
      expect(r.out).toContain("set SKIFF_LOCAL_POSTGRES_PORT");
    } finally {
      held.close();
    }
    expect(await leftovers(PROJECT)).toEqual([]);
  });

  it("starts the stack, a worker container runs a job in bwrap, the console attaches, and local:down leaves nothing", {
    timeout: 1_200_000,
  }, async () => {
    const up = await script("local-up.mjs", env);
    expect(up.code, up.out).toBe(0);
    const api = `http://127.0.0.1:${ports.api}`;
    expect(up.out).toContain(`skiff local stack is up (compose project ${PROJECT}, host network)`);
    expect(up.out).toContain(`API          ${api}`);
    // The stop line carries the settings, or a fresh shell's local:down would stop another project.
    expect(up.out).toMatch(
      new RegExp(`stop +(\\S+ )*SKIFF_LOCAL_PROJECT=${PROJECT} (\\S+ )*pnpm local:down`),
    );
    const admin = readFileSync(join(stateDir, "admin.token"), "utf8").trim();
    const cli = { ...process.env, SKIFF_URL: api, SKIFF_TOKEN: admin, SKIFF_HOME: join(stateDir, "home") };

    // The controller scales the compose service; one worker is enough for one job.
    const scaled = await runCli(["fleet", "scale", "1"], cli, undefined, 60_000);
    expect(scaled.code, scaled.stderr).toBe(0);
    const submitted = await runCli(
      ["jobs", "submit", "-f", "template/deploy-root/jobs/hello.yaml", "--follow"],
      cli,
      undefined,
      600_000,
    );
    expect(submitted.code, submitted.stdout + submitted.stderr).toBe(0);
    expect(submitted.stdout).toMatch(/hello from skiff-sandbox as uid \d+ in \/workspace/);
    expect(submitted.stdout).toContain("no network, as asked");

    // The agent that ran it is one of the project's worker containers, started by the controller.
    const listed = await runCli(["agents", "ls", "--json"], cli);
    const agents = JSON.parse(listed.stdout) as { name: string; status: string; sandbox: string }[];
    const workers = (
      await docker([
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        `label=com.docker.compose.project=${PROJECT}`,
        "--filter",
        "label=com.docker.compose.service=worker",
      ])
    )
      .split("\n")
      .filter(Boolean)
      .map((id) => id.slice(0, 12));
    expect(workers.length).toBeGreaterThanOrEqual(1);
    const online = agents.filter((a) => a.status === "online");
    expect(online.map((a) => a.name).sort()).toEqual(workers.sort());
    expect(online.every((a) => a.sandbox === "bwrap")).toBe(true);
    // Each step's bwrap leaves its inner process to PID 1, which reaps it: no zombie per step.
    for (const w of workers) {
      const states = await docker(["exec", w, "ps", "-o", "stat"]);
      expect(
        states.split("\n").filter((l) => l.trim().startsWith("Z")),
        w,
      ).toEqual([]);
    }

    // The console, attached as local:up says, shows that worker and the job.
    const tmux = new TmuxSession(
      `node --import tsx apps/cli/src/main.ts tui; echo "tui exited $?"; sleep 600`,
      {
        cwd: root,
        env: {
          SKIFF_URL: api,
          SKIFF_TOKEN: admin,
          SKIFF_HOME: cli.SKIFF_HOME,
          TERM: "xterm-256color",
          LANG: "C.UTF-8",
        },
      },
    );
    try {
      await tmux.waitFor("● live", 60_000);
      const view = async (name: string, shows: string | RegExp) => {
        tmux.type(`:${name}`);
        await tmux.waitFor(`:${name}`);
        tmux.keys("Enter");
        return tmux.waitFor(shows, 30_000);
      };
      await view("agents", workers[0] ?? "no worker");
      await view("jobs", /hello\s.*succeeded/);
    } finally {
      tmux.kill();
    }

    const down = await script("local-down.mjs", env, ["--volumes"], 300_000);
    expect(down.code, down.out).toBe(0);
    expect(down.out).toContain(
      `skiff local stack ${PROJECT} stopped; its volumes and .skiff/local-${PROJECT} are gone`,
    );
    expect(await leftovers(PROJECT)).toEqual([]);
    expect(existsSync(stateDir)).toBe(false);
    await waitFor(
      "the API to be gone",
      async () =>
        !(await fetch(`${api}/healthz`).then(
          () => true,
          () => false,
        )),
      30_000,
      200,
    );
  });
});
