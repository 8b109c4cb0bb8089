import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@skiff/testkit";
import { Pool } from "undici";

export const root = new URL("../", import.meta.url).pathname;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`bench: timed out waiting for ${what}`);
}

export interface ApiUnderTest {
  url: string;
  /** The API process, for its CPU time in /proc. */
  pid: number;
  admin: string;
  client: Client;
  stop(): Promise<void>;
}

/** Starts `skiff api` (or `skiff up`) as a real child process, as an operator would run it. */
export async function startApi(opts: {
  command: "api" | "up";
  env: Record<string, string>;
  home?: string;
  /** Extra flags for node itself, e.g. `--cpu-prof` for `bench/profile.ts`. */
  nodeArgs?: string[];
}): Promise<ApiUnderTest> {
  const port = await freePort();
  const home = opts.home ?? mkdtempSync(join(tmpdir(), "skiff-bench-"));
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      "--import",
      "tsx",
      "apps/cli/src/main.ts",
      opts.command,
      "--port",
      String(port),
      "--no-tui",
    ].filter((a) => opts.command === "up" || a !== "--no-tui"),
    {
      cwd: root,
      env: { ...process.env, SKIFF_HOME: home, SKIFF_LOG_LEVEL: "warn", ...opts.env },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    `skiff ${opts.command} to be ready (${err.slice(-300)})`,
    async () => (await fetch(`${url}/readyz`)).ok,
    60_000,
  );
  const admin = readFileSync(join(home, "admin.token"), "utf8").trim();
  const client = new Client(url, admin);
  return {
    url,
    pid: child.pid ?? 0,
    admin,
    client,
    async stop() {
      await client.close();
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      });
      if (!opts.home) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A keep-alive HTTP client: what a worker or the CLI would use. */
export class Client {
  private readonly pool: Pool;

  constructor(
    readonly url: string,
    private readonly token: string,
    connections = 128,
  ) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  async call(method: "GET" | "POST" | "PUT", path: string, body?: unknown, token = this.token): Promise<any> {
    const res = await this.pool.request({
      method,
      path,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) throw new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`);
    return JSON.parse(text);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export async function registerAgents(
  client: Client,
  agentToken: string,
  n: number,
  queue: string,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await client.call(
      "POST",
      "/v1/agent/register",
      { name: `bench-${queue}-${i}`, version: "bench", slots: 8, labels: { queue }, sandbox: "none" },
      agentToken,
    );
    ids.push(res.agentId);
  }
  return ids;
}

/** Starts `skiff worker` as a real child process against the API. */
export async function startWorkerProcess(opts: {
  apiUrl: string;
  token: string;
  name: string;
  queue: string;
  sandbox: "bwrap" | "docker";
  workDir: string;
}): Promise<{ stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "apps/cli/src/main.ts",
      "worker",
      "--api-url",
      opts.apiUrl,
      "--token",
      opts.token,
      "--name",
      opts.name,
      "--sandbox",
      opts.sandbox,
      "--labels",
      `queue=${opts.queue}`,
      "--health-port",
      "0",
      "--work-dir",
      opts.workDir,
      "--slots",
      "4",
    ],
    { cwd: root, env: { ...process.env, SKIFF_LOG_LEVEL: "warn" }, stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  await waitUntil("the worker to register", async () => {
    if (child.exitCode !== null) throw new Error(`worker exited: ${err}`);
    return err.includes("skiff worker");
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

export { freePort } from "@skiff/testkit";

/** Queues `n` no-op jobs on `queue` straight in SQL (the throughput rows measure claim → finish only). */
export async function enqueueNoops(
  db: { query(sql: string, params: unknown[]): Promise<unknown> },
  queue: string,
  n: number,
): Promise<void> {
  const spec = {
    name: "noop",
    queue,
    maxAttempts: 1,
    timeoutSeconds: 600,
    resources: { memoryMb: 512, cpus: 1, pids: 256 },
    env: {},
    secrets: [],
    steps: [{ name: "noop", run: "true", network: "off" }],
  };
  await db.query(
    `insert into jobs (id, name, queue, state, spec, max_attempts, timeout_seconds, created_by)
     select 'job_b' || $3 || '_' || lpad(g::text, 7, '0'), 'noop', $1, 'queued', $2, 1, 600, 'bench'
       from generate_series(1, $4) g`,
    [queue, JSON.stringify(spec), `${Date.now()}${Math.floor(Math.random() * 1000)}`, n],
  );
}
