import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";
import type { ServiceGate } from "./services.ts";

/**
 * Servers a test owns outright, so it can stop, restart or freeze them without touching the shared
 * PostgreSQL and Redis every other test file uses at the same time.
 */

const hasCommand = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

export interface RedisServer {
  url: string;
  port: number;
  password: string;
  /** Stops it (SIGTERM) and waits for the exit. */
  stop(): Promise<void>;
}

export function redisServerGate(): ServiceGate {
  return hasCommand("redis-server")
    ? { available: true, missing: null }
    : { available: false, missing: "redis-server is not installed (apt-get install -y redis-server)" };
}

/** A throwaway redis-server on `port` (a free one by default), ready to accept connections. */
export async function startRedisServer(port?: number, password?: string): Promise<RedisServer> {
  const p = port ?? (await freePort());
  // A password of its own (kept across restarts when passed back), so no other local user can
  // reach what a test runs on it while it runs.
  const pass = password ?? randomBytes(16).toString("hex");
  const child = spawn(
    "redis-server",
    ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", pass],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  let output = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server not ready within 10 s:\n${output}`)),
        10_000,
      );
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url: `redis://:${pass}@127.0.0.1:${p}`, port: p, password: pass, stop };
}

/** The newest installed PostgreSQL server's bin directory (Debian's layout), or null. */
function postgresBin(): string | null {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, "bin", "initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], "bin") : null;
}

const isRoot = () => process.getuid?.() === 0;

function hasPostgresUser(): boolean {
  return spawnSync("id", ["-u", "postgres"]).status === 0;
}

export function privatePostgresGate(): ServiceGate {
  if (!postgresBin())
    return {
      available: false,
      missing: "PostgreSQL server binaries not found (apt-get install -y postgresql)",
    };
  if (isRoot() && !hasPostgresUser())
    return { available: false, missing: "running as root without a postgres user to run initdb as" };
  return { available: true, missing: null };
}

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** A fast shutdown: open connections are cut, as in a crash-free restart. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops and removes the data directory. */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL cluster of the test's own, in a temporary directory, on a free loopback port, with
 * a random password (in `url`) and no fsync (it holds nothing worth keeping). As root, the server runs as
 * the `postgres` user, which PostgreSQL insists on.
 */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = postgresBin();
  if (!bin) throw new Error("PostgreSQL server binaries not found (apt-get install -y postgresql)");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "skiff-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  const asOwner = (cmd: string, args: string[]): string[] =>
    isRoot() ? ["runuser", "-u", "postgres", "--", join(bin, cmd), ...args] : [join(bin, cmd), ...args];
  const ownerIds = isRoot()
    ? {
        uid: Number(execFileSync("id", ["-u", "postgres"]).toString().trim()),
        gid: Number(execFileSync("id", ["-g", "postgres"]).toString().trim()),
      }
    : { uid: 0, gid: 0 };
  if (isRoot()) chownSync(dir, ownerIds.uid, ownerIds.gid);
  const run = (cmd: string, args: string[]) => {
    const [file, ...rest] = asOwner(cmd, args);
    const res = spawnSync(file as string, rest, { encoding: "utf8", cwd: dir });
    if (res.status !== 0) {
      const serverLog = existsSync(log) ? readFileSync(log, "utf8").slice(-4_000) : "";
      throw new Error(
        `${cmd} ${args.join(" ")} failed (${res.status}):\n${res.stderr}${res.stdout}\n${serverLog}`,
      );
    }
  };
  // A password of its own: trust would let any local user in (and `COPY … TO PROGRAM` run as the
  // server's account) while the suite runs.
  const password = randomBytes(16).toString("hex");
  const pwfile = join(dir, "pw");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (isRoot()) chownSync(pwfile, ownerIds.uid, ownerIds.gid);
  run("initdb", [
    "-D",
    data,
    "-U",
    "postgres",
    "-A",
    "scram-sha-256",
    `--pwfile=${pwfile}`,
    "-E",
    "UTF8",
    "--no-sync",
    "--no-instructions",
  ]);
  rmSync(pwfile, { force: true });
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${dir}`,
    "-c fsync=off",
    "-c full_page_writes=off",
    "-c synchronous_commit=off",
    "-c max_connections=200",
  ].join(" ");
  const start = async () => run("pg_ctl", ["-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start"]);
  const stop = async () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  const immediateStop = () => {
    const [file, ...rest] = asOwner("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    spawnSync(file as string, rest, { cwd: dir });
  };
  try {
    await start();
  } catch (err) {
    // A server that did not come up in time may still be starting: never leave it behind.
    immediateStop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let destroyed = false;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      immediateStop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
