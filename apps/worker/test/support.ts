import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServiceGate } from "@skiff/testkit";
import type { Limits, SandboxDriver, StepEnd, StepRun } from "../src/sandbox/types.ts";

export function bwrapGate(): ServiceGate {
  try {
    execFileSync("bwrap", ["--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"], { stdio: "ignore" });
    return { available: true, missing: null };
  } catch {
    return {
      available: false,
      missing: "bubblewrap is missing or cannot create namespaces: apt-get install bubblewrap",
    };
  }
}

/** A TCP listener (on 127.0.0.1 unless told) that counts connections, for network tests. */
export async function listener(host = "127.0.0.1"): Promise<{
  port: number;
  connections: () => number;
  close(): Promise<void>;
}> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.on("error", () => {}); // the sandboxed client may hang up first
    s.end("hi\n");
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("no address");
  return { port: addr.port, connections: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

export interface Ran {
  end: StepEnd;
  lines: { stream: string; text: string }[];
  out: string;
}

let counter = 0;

/** Runs one step through a driver in a fresh workspace, collecting its output. */
export async function runStep(
  driver: SandboxDriver,
  command: string,
  opts: Partial<Omit<StepRun, "limits">> & {
    limits?: Partial<Limits>;
    abortAfterMs?: number;
    workspace?: string;
  } = {},
): Promise<Ran> {
  const workspace = opts.workspace ?? mkdtempSync(join(tmpdir(), "skiff-ws-"));
  const lines: { stream: string; text: string }[] = [];
  const controller = new AbortController();
  const timer =
    opts.abortAfterMs === undefined ? null : setTimeout(() => controller.abort(), opts.abortAfterMs);
  try {
    const end = await driver.run({
      jobId: opts.jobId ?? `job_test${process.pid}_${++counter}`,
      workerName: opts.workerName ?? "test-worker",
      stepIndex: opts.stepIndex ?? 0,
      command,
      env: opts.env ?? {},
      workspace,
      network: opts.network ?? "off",
      limits: { memoryMb: 256, cpus: 1, pids: 64, ...opts.limits },
      image: opts.image,
      onLine: (stream, text) => lines.push({ stream, text }),
      signal: opts.signal ?? controller.signal,
      timeoutMs: opts.timeoutMs ?? 30_000,
      graceMs: opts.graceMs ?? 2_000,
    });
    const out = lines
      .filter((l) => l.stream !== "system")
      .map((l) => l.text)
      .join("\n");
    return { end, lines, out };
  } finally {
    if (timer) clearTimeout(timer);
    if (!opts.workspace) rmSync(workspace, { recursive: true, force: true });
  }
}

/**
 * A TCP relay on loopback in front of `target` that can be switched off: while down, every open
 * connection is cut and the port refuses new ones (nothing listens), as when an API replica dies.
 */
export async function switchableRelay(target: string): Promise<{
  url: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}> {
  const { createServer, connect } = await import("node:net");
  const to = new URL(target);
  const sockets = new Set<import("node:net").Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(to.port), to.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("relay has no port");
  const port = address.port;
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
  return {
    url: `http://127.0.0.1:${port}`,
    down: stop,
    async up() {
      if (!server.listening) await listen(port);
    },
    close: stop,
  };
}
