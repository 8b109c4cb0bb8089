import { execFile } from "node:child_process";
import { dirname } from "node:path";
import { Client } from "undici";
import { z } from "zod";
import { type SystemPathsProxy, startSystemPathsProxy } from "./systempaths.ts";
import type { Scaler } from "./types.ts";

export interface ComposeScalerOptions {
  /** The compose project (`-p`): lowercase letters, digits, `-` and `_`, as compose normalises it. */
  project: string;
  /** The compose file (`-f`), or the base file and its overrides, in order (a `-f` each). */
  file: string | string[];
  /** The worker service in it. */
  service: string;
  /** The Docker Engine's Unix socket (default /var/run/docker.sock); compose is pointed at it too. */
  dockerSocket?: string;
  /** `["docker", "compose"]` or `["docker-compose"]`; detected when not given. */
  composeCommand?: string[];
  onEvent?(msg: string, fields: Record<string, unknown>): void;
}

/** The compose CLI exited non-zero; its stderr is in the message. */
export class ComposeError extends Error {
  readonly code = "compose_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ComposeError";
  }
}

/** Docker 20.10's API; later engines still serve it. */
const API = "/v1.41";
const COMPOSE_TIMEOUT_MS = 5 * 60_000;
/** States in which compose still counts a container towards the scale; an exited one it would restart. */
const GONE = new Set(["exited", "dead"]);

const Listed = z.array(
  z.object({ Id: z.string(), State: z.string(), Labels: z.record(z.string(), z.string()).nullish() }),
);
const ApiMessage = z.object({ message: z.string() });

interface Container {
  id: string;
  state: string;
}

/**
 * The worker name a container registers with: the first 12 characters of its id, which is Docker's
 * default hostname and so what `skiff worker` picks when given no `--name`. The worker service must
 * therefore keep the default hostname (no `hostname:`), or, where the container shares another UTS
 * namespace (`network_mode: host`), pass `--name` with those 12 characters itself (the compose test
 * reads them from /proc/self/mountinfo).
 */
export const composeWorkerName = (containerId: string): string => containerId.slice(0, 12);

function run(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { env, cwd, timeout: COMPOSE_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const why = stderr.trim() || err.message;
        reject(new ComposeError(`\`${bin} ${args.join(" ")}\` failed: ${why}`, { cause: err }));
      },
    );
  });
}

/** `docker compose` (the v2 plugin) when it answers, else `docker-compose` (v1), else an error saying what to install. */
export async function detectComposeCommand(env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  for (const cmd of [["docker", "compose"], ["docker-compose"]]) {
    const [bin, ...rest] = cmd;
    if (!bin) continue;
    try {
      await run(bin, [...rest, "version"], env);
      return cmd;
    } catch {
      // try the next one
    }
  }
  throw new ComposeError(
    "neither `docker compose` nor `docker-compose` works here: install the Compose plugin or `apt-get install docker-compose`",
  );
}

/**
 * Workers as replicas of one compose service, scaled with
 * `<compose> -p P -f F up -d --no-deps --scale S=N S`. The containers are read through the Engine API
 * (labels `com.docker.compose.project=P`, `com.docker.compose.service=S`); the running ones are the
 * workers, named by {@link composeWorkerName}.
 *
 * Compose keeps the lowest-numbered N containers of a service and starts the stopped ones among them,
 * so before each `up` the exited containers (drained workers, or crashed ones) are removed: otherwise
 * compose would start a drained worker again, or keep an exited one and stop a running, perhaps busy,
 * one in its place. For the same reason the service must not restart a worker that exits 0 after a
 * drain: use `restart: "no"` or `"on-failure"`. `close()` leaves the containers running; they belong to
 * the compose project and outlive a controller restart.
 */
export function createComposeScaler(opts: ComposeScalerOptions): Scaler {
  const socketPath = opts.dockerSocket ?? "/var/run/docker.sock";
  const engine = new Client("http://docker", { socketPath });
  const env = opts.dockerSocket ? { ...process.env, DOCKER_HOST: `unix://${socketPath}` } : process.env;
  let compose: Promise<string[]> | null = opts.composeCommand ? Promise.resolve(opts.composeCommand) : null;
  let running: string[] = [];
  const files = typeof opts.file === "string" ? [opts.file] : opts.file;

  const call = async (method: "GET" | "POST" | "DELETE", path: string) => {
    const res = await engine.request({ method, path: `${API}${path}`, headersTimeout: 30_000 });
    const text = await res.body.text();
    return { status: res.statusCode, text };
  };
  const fail = (what: string, status: number, text: string): never => {
    const parsed = ApiMessage.safeParse(safeJson(text));
    throw new Error(`Docker Engine: ${what}: HTTP ${status}: ${parsed.success ? parsed.data.message : text}`);
  };

  const containers = async (): Promise<Container[]> => {
    const filters = JSON.stringify({
      label: [
        `com.docker.compose.project=${opts.project}`,
        `com.docker.compose.service=${opts.service}`,
        "com.docker.compose.oneoff=False",
      ],
    });
    const res = await call("GET", `/containers/json?all=true&filters=${encodeURIComponent(filters)}`);
    if (res.status !== 200)
      fail(`list the containers of ${opts.project}/${opts.service}`, res.status, res.text);
    return Listed.parse(safeJson(res.text)).map((c) => ({ id: c.Id, state: c.State }));
  };

  const remove = async (c: Container) => {
    if (!GONE.has(c.state)) {
      // Only a worker that already deregistered gets here: SIGTERM lets it finish exiting.
      const stop = await call("POST", `/containers/${c.id}/stop?t=10`);
      if (![204, 304, 404].includes(stop.status)) fail(`stop ${c.id}`, stop.status, stop.text);
    }
    const del = await call("DELETE", `/containers/${c.id}?force=true`);
    if (![204, 404].includes(del.status)) fail(`remove ${c.id}`, del.status, del.text);
  };

  /** Removes the exited containers and returns the ones left, which compose counts. */
  const prune = async (): Promise<Container[]> => {
    const all = await containers();
    for (const c of all.filter((x) => GONE.has(x.state))) {
      await remove(c);
      opts.onEvent?.("removed an exited worker container", { container: composeWorkerName(c.id) });
    }
    return all.filter((x) => !GONE.has(x.state));
  };

  // Compose v1 sends `systempaths=unconfined` to the engine as written, which refuses it; v2 and
  // the Docker CLI translate it. Under v1, compose talks to the engine through a proxy that does.
  let proxy: Promise<SystemPathsProxy | null> | null = null;
  const composeEnv = async (bin: string, base: string[]): Promise<NodeJS.ProcessEnv> => {
    proxy ??= (async () => {
      const { stdout } = await run(bin, [...base, "version", "--short"], env);
      if (!/^v?1\./.test(stdout.trim())) return null;
      const started = await startSystemPathsProxy(socketPath);
      opts.onEvent?.("compose v1: translating systempaths=unconfined for it", { proxy: started.socketPath });
      return started;
    })();
    const p = await proxy;
    return p ? { ...env, DOCKER_HOST: `unix://${p.socketPath}` } : env;
  };

  const scaleTo = async (n: number) => {
    compose ??= detectComposeCommand(env);
    const [bin, ...base] = await compose;
    if (!bin) throw new ComposeError("compose scaler: empty compose command");
    const args = [
      "-p",
      opts.project,
      ...files.flatMap((f) => ["-f", f]),
      "up",
      "-d",
      "--no-deps",
      "--scale",
      `${opts.service}=${n}`,
    ];
    // From the first file's directory: compose v1 reads relative paths in it (a seccomp profile)
    // from the working directory, v2 from the project's; this makes them the same.
    await run(bin, [...base, ...args, opts.service], await composeEnv(bin, base), dirname(files[0] ?? "."));
    opts.onEvent?.("compose scaled", { service: opts.service, replicas: n });
  };

  const sync = async () => {
    running = (await containers()).filter((c) => c.state === "running").map((c) => composeWorkerName(c.id));
  };

  return {
    kind: "compose",
    list: () => [...running],
    sync,
    async add(n) {
      const left = await prune();
      await scaleTo(left.length + n);
      await sync();
    },
    async release(name) {
      const all = await containers();
      const mine = all.find((c) => composeWorkerName(c.id) === name);
      if (mine) await remove(mine);
      const left = await prune();
      await scaleTo(left.length);
      await sync();
    },
    async close() {
      await engine.close();
      await (await proxy?.catch(() => null))?.close();
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
