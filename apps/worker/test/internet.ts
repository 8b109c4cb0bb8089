import { execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A stand-in for the internet: a network namespace this test makes, joined to the host by a veth
 * pair on a /30 of TEST-NET-3 (203.0.113.0/24), with a TCP server inside that answers "hi from outside".
 * Traffic never leaves the machine.
 */
export interface Internet {
  /** The server's address and port, inside the namespace. */
  host: string;
  port: number;
  /** The host's end of the veth pair: an address of the worker host itself. */
  hostSide: string;
  close(): Promise<void>;
}

export function canMakeNamespaces(): boolean {
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

const quietly = (...args: string[]) => {
  try {
    execFileSync("ip", args, { stdio: "ignore" });
  } catch {
    // already gone
  }
};

/** Removes what a test process that died (a killed run, a mutation sandbox) left: its veth and namespace. */
function sweepStale(): void {
  const names = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((line) => /^sk(\d+)-inet\b/.exec(line))
    .filter((m) => m !== null);
  for (const m of names) {
    if (alive(Number(m[1]))) continue;
    quietly("link", "del", `sk${m[1]}h`);
    quietly("netns", "del", `sk${m[1]}-inet`);
  }
}

/**
 * A /30 of TEST-NET-3 of this process's own, so that two test files using the stand-in internet at
 * once (vitest runs files in parallel) never route to each other's namespace: a lock file per slot,
 * taken over when its owner is dead.
 */
function claimSlot(): { slot: number; release: () => void } {
  for (let i = 0; i < 64; i++) {
    const slot = (process.pid + i) % 64;
    const lock = join(tmpdir(), `skiff-test-inet-${slot}.lock`);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(lock, String(process.pid), { flag: "wx" });
        return { slot, release: () => rmSync(lock, { force: true }) };
      } catch {
        const owner = Number(readFileSync(lock, "utf8"));
        if (owner === process.pid || !Number.isInteger(owner) || alive(owner)) break;
        rmSync(lock, { force: true });
      }
    }
  }
  throw new Error("no free slot for a stand-in internet: 64 test processes hold one");
}

export async function startInternet(): Promise<Internet> {
  sweepStale();
  const { slot, release } = claimSlot();
  const id = `sk${process.pid}`;
  const ns = `${id}-inet`;
  const hostSide = `203.0.113.${slot * 4 + 1}`;
  const inside = `203.0.113.${slot * 4 + 2}`;
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  ip("netns", "add", ns);
  ip("link", "add", `${id}h`, "type", "veth", "peer", "name", `${id}n`);
  ip("link", "set", `${id}n`, "netns", ns);
  ip("addr", "add", `${hostSide}/30`, "dev", `${id}h`);
  ip("link", "set", `${id}h`, "up");
  ip("-n", ns, "addr", "add", `${inside}/30`, "dev", `${id}n`);
  ip("-n", ns, "link", "set", `${id}n`, "up");
  ip("-n", ns, "link", "set", "lo", "up");
  const port = 8080;
  const server = spawn(
    "ip",
    [
      "netns",
      "exec",
      ns,
      process.execPath,
      "-e",
      `require("net").createServer((s) => { s.on("error", () => {}); s.end("hi from outside\\n"); })` +
        `.listen(${port}, "${inside}", () => console.log("listening"));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    server.stdout?.once("data", () => resolve());
    server.once("exit", (code) => reject(new Error(`the namespace's server exited with ${code}`)));
  });
  return {
    host: inside,
    port,
    hostSide,
    async close() {
      server.kill("SIGKILL");
      await new Promise((r) => server.once("exit", r));
      quietly("link", "del", `${id}h`);
      quietly("netns", "del", ns);
      release();
    },
  };
}

/** The host's IPv4 addresses other than loopback. */
export function otherHostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === "IPv4" && !a.internal)
    .map((a) => (a as { address: string }).address);
}

/** A step command that tries a TCP connection and prints `connected` or `refused:<code>`. */
export const connectCommand = (host: string, port: number) =>
  `node -e "const s=require('net').connect(${port},'${host}');s.setTimeout(3000,()=>{console.log('refused:TIMEOUT');process.exit(3)});` +
  `s.on('data',d=>{console.log('connected '+d.toString().trim());process.exit(0)}).on('error',e=>{console.log('refused:'+e.code);process.exit(3)})"`;
