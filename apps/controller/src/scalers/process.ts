import { type ChildProcess, spawn } from "node:child_process";
import type { Scaler } from "./types.ts";

export interface ProcessScalerOptions {
  apiUrl: string;
  token: string;
  namePrefix: string;
  /** The command that runs `skiff worker` (default: this checkout's CLI through tsx). */
  command?: string[];
  extraArgs?: string[];
  onEvent?(msg: string, fields: Record<string, unknown>): void;
}

const ROOT = new URL("../../../../", import.meta.url).pathname;

/**
 * Runs workers as child `skiff worker` processes. A worker that exits 0 (it drained) is gone; one
 * that crashes is started again under the same name.
 */
export function createProcessScaler(opts: ProcessScalerOptions): Scaler {
  const children = new Map<string, ChildProcess>();
  let next = 1;
  let closing = false;
  const command = opts.command ?? [process.execPath, "--import", "tsx", "apps/cli/src/main.ts", "worker"];

  const start = (name: string) => {
    const [bin, ...base] = command;
    if (!bin) throw new Error("process scaler: empty worker command");
    const child = spawn(
      bin,
      [...base, "--api-url", opts.apiUrl, "--name", name, "--health-port", "0", ...(opts.extraArgs ?? [])],
      // The token goes in the environment, which only the worker's own user can read
      // (/proc/PID/environ), not on its command line, which every user of the host can.
      {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...workerEnv(process.env), SKIFF_TOKEN: opts.token },
      },
    );
    children.set(name, child);
    child.once("exit", (code, signal) => {
      if (children.get(name) !== child) return;
      children.delete(name);
      if (closing || code === 0) {
        opts.onEvent?.("worker exited", { worker: name, code });
        return;
      }
      opts.onEvent?.("worker crashed; starting it again", { worker: name, code, signal });
      start(name);
    });
  };

  return {
    kind: "process",
    list: () => [...children.keys()],
    async add(n) {
      for (let i = 0; i < n; i++) start(`${opts.namePrefix}-${next++}`);
    },
    async close() {
      closing = true;
      await Promise.all(
        [...children.values()].map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.exitCode !== null || c.signalCode !== null) return resolve();
              c.once("exit", () => resolve());
              c.kill("SIGTERM");
            }),
        ),
      );
    },
  };
}

/** What a worker needs to run, and no more. */
const PASSED = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "NODE_OPTIONS",
  "SKIFF_HOME",
  "SKIFF_LOG_LEVEL",
];

/**
 * The environment of a worker this scaler starts: the basics, plus the secrets the operator gives
 * workers (SKIFF_SECRET_<NAME>). Never the controller's own credentials (DATABASE_URL, REDIS_URL,
 * SKIFF_TOKEN): the worker gets its own token as SKIFF_TOKEN, and a job must not find the rest.
 */
export function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (PASSED.includes(k) || k.startsWith("SKIFF_SECRET_"))) out[k] = v;
  }
  return out;
}
