import { type ChildProcess, spawn } from "node:child_process";
import { waitFor } from "@skiff/testkit";

const root = new URL("../../../", import.meta.url).pathname;

/** A `skiff` child process with its combined output kept for assertions and failure messages. */
export interface Proc {
  name: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Every child started through `startSkiff`, so a suite can prove none is left running. */
const started: Proc[] = [];

/** Starts `node --import tsx apps/cli/src/main.ts <args>` from the repository root. */
export function startSkiff(name: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ["--import", "tsx", "apps/cli/src/main.ts", ...args], {
    cwd: root,
    env: { ...process.env, SKIFF_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const proc = { name, child, output: () => out, exited };
  started.push(proc);
  return proc;
}

export function isRunning(p: Proc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Waits for `check`, failing at once (with the child's output) if the child exits first. */
export async function whileRunning<T>(
  p: Proc,
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const died = p.exited.then(({ code, signal }) => {
    throw new Error(`${p.name} exited (${code ?? signal}) while waiting for ${what}:\n${p.output()}`);
  });
  died.catch(() => {});
  return Promise.race([died, waitFor(what, check, timeoutMs, 50)]);
}

/** Waits (with a deadline) for the process to exit on its own. */
export async function exitOf(
  p: Proc,
  timeoutMs = 20_000,
  what = "exit",
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${p.name} did not ${what} within ${timeoutMs} ms:\n${p.output()}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([p.exited, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` and waits (with a deadline) for the process to exit. */
export function stopProc(
  p: Proc,
  signal: NodeJS.Signals = "SIGTERM",
  timeoutMs = 20_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (isRunning(p)) p.child.kill(signal);
  return exitOf(p, timeoutMs, `exit after ${signal}`);
}

/**
 * Kills whatever `startSkiff` started that still runs and returns their names, so `afterAll` can
 * fail the suite for a leaked process after cleaning it up.
 */
export async function killLeftovers(): Promise<string[]> {
  const left = started.filter(isRunning);
  for (const p of left) p.child.kill("SIGKILL");
  await Promise.all(left.map((p) => p.exited));
  return left.map((p) => p.name);
}

export interface ApiOptions {
  port: number;
  home: string;
  databaseUrl: string;
  redisUrl: string;
  busPrefix: string;
  /** Extra environment, e.g. SKIFF_OFFLINE_AFTER_MS. */
  env?: Record<string, string>;
}

/** `skiff api` on a fixed port, ready once `/readyz` answers 200. */
export async function startApi(name: string, o: ApiOptions): Promise<{ proc: Proc; url: string }> {
  const proc = startSkiff(name, ["api", "--port", String(o.port)], {
    DATABASE_URL: o.databaseUrl,
    REDIS_URL: o.redisUrl,
    SKIFF_BUS_PREFIX: o.busPrefix,
    SKIFF_HOME: o.home,
    ...o.env,
  });
  const url = `http://127.0.0.1:${o.port}`;
  await whileRunning(
    proc,
    `${name} to be ready`,
    async () => (await fetch(`${url}/readyz`).catch(() => null))?.status === 200,
  );
  return { proc, url };
}

export interface WorkerOptions {
  apiUrl: string;
  token: string;
  workDir: string;
  queue: string;
  slots?: number;
  /** Extra environment, e.g. SKIFF_HOME for a config file. */
  env?: Record<string, string>;
}

/** `skiff worker` with bubblewrap and a free health port; ready once its `/readyz` answers 200. */
export async function startWorkerProc(
  name: string,
  o: WorkerOptions,
): Promise<{ proc: Proc; healthUrl: string; agentId: string }> {
  const proc = startSkiff(
    `worker ${name}`,
    [
      "worker",
      "--api-url",
      o.apiUrl,
      "--token",
      o.token,
      "--name",
      name,
      "--sandbox",
      "bwrap",
      "--health-port",
      "0",
      "--work-dir",
      o.workDir,
      "--slots",
      String(o.slots ?? 1),
      "--disk-mb",
      "1024",
      "--labels",
      `queue=${o.queue}`,
    ],
    o.env ?? {},
  );
  // The banner names the health URL once the worker has registered.
  const healthUrl = await whileRunning(
    proc,
    `worker ${name} to print its health URL`,
    () => /health on (http:\/\/\S+?)(?:,|\s|$)/.exec(proc.output())?.[1],
  );
  const agentId = await whileRunning(proc, `worker ${name} to be ready`, async () => {
    const res = await fetch(`${healthUrl}/readyz`).catch(() => null);
    if (res?.status !== 200) return undefined;
    return ((await res.json()) as { agentId: string }).agentId;
  });
  return { proc, healthUrl, agentId };
}

/**
 * A JSON call to the API at `base()` as `token()` (or the token given), answering its status and
 * parsed body. `base` is asked each time: a suite whose replicas come and go points it at a live one.
 */
export function apiCaller(base: () => string, token: () => string) {
  return async (method: string, path: string, body?: unknown, as = token()) => {
    const res = await fetch(`${base()}${path}`, {
      method,
      headers: { authorization: `Bearer ${as}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };
}

export { freePort } from "@skiff/testkit";
