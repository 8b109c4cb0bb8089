import { execFileSync, spawn } from "node:child_process";
import { networkInterfaces } from "node:os";

/**
 * A stand-in for the internet: a network namespace this test makes, joined to the host by a veth
 * pair on TEST-NET-3 (203.0.113.0/24), with a TCP server inside that answers "hi from outside".
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

export async function startInternet(): Promise<Internet> {
  const id = `sk${process.pid % 100_000}`;
  const ns = `${id}-inet`;
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  ip("netns", "add", ns);
  ip("link", "add", `${id}h`, "type", "veth", "peer", "name", `${id}n`);
  ip("link", "set", `${id}n`, "netns", ns);
  ip("addr", "add", "203.0.113.1/24", "dev", `${id}h`);
  ip("link", "set", `${id}h`, "up");
  ip("-n", ns, "addr", "add", "203.0.113.2/24", "dev", `${id}n`);
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
        `.listen(${port}, "203.0.113.2", () => console.log("listening"));`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    server.stdout?.once("data", () => resolve());
    server.once("exit", (code) => reject(new Error(`the namespace's server exited with ${code}`)));
  });
  return {
    host: "203.0.113.2",
    port,
    hostSide: "203.0.113.1",
    async close() {
      server.kill("SIGKILL");
      await new Promise((r) => server.once("exit", r));
      execFileSync("ip", ["link", "del", `${id}h`], { stdio: "ignore" });
      execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
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
