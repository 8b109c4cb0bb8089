import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { networkInterfaces } from "node:os";

/**
 * Egress for `network: on` bwrap steps: the sandbox keeps a network namespace of its own, and
 * slirp4netns gives it outbound connectivity through the worker's sockets (user-mode networking).
 * The worker host itself stays out of reach: slirp4netns runs with --disable-host-loopback, and the
 * sandbox's routing table, which a step cannot change (no capabilities, no user namespaces), refuses
 * loopback, private, link-local, carrier-grade NAT and multicast ranges and every address of the
 * host, except the networks the operator allows.
 */

/** Networks a step never reaches unless allowed: they lead to the host or to its neighbours. */
export const BLOCKED_NETWORKS = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
  // slirp4netns's own gateway, which forwards to the host.
  "10.0.2.2/32",
];

/** The address slirp4netns answers DNS on inside the sandbox. */
export const SLIRP_DNS = "10.0.2.3";

/** Every IPv4 address of this host, as /32 networks. */
export function hostAddresses(): string[] {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    // Stryker disable next-line ArrayDeclaration: Node types the lists as possibly undefined; none is.
    for (const a of list ?? []) if (a.family === "IPv4") out.add(`${a.address}/32`);
  }
  return [...out];
}

/** The `ip -batch` lines that set the sandbox's routes. */
export function routeBatch(allow: string[], host = hostAddresses()): string {
  const lines = allow.map((net) => `route add ${net} via 10.0.2.2 dev tap0 onlink`);
  for (const net of [...BLOCKED_NETWORKS, ...host]) {
    if (allow.includes(net)) continue;
    lines.push(`route add prohibit ${net}`);
  }
  return `${lines.join("\n")}\n`;
}

/** One line for the step's log: which egress rule applies. */
export function describeEgress(allow: string[]): string {
  return (
    "egress via user-mode networking (slirp4netns): public addresses only, no route to the host, " +
    `loopback, private or link-local ranges${allow.length ? `; allowed by the operator: ${allow.join(", ")}` : ""}`
  );
}

export interface Egress {
  stop(): void;
}

/**
 * Waits until the sandbox has its own network namespace with loopback configured: bwrap reports the
 * pid before it sets up loopback, and slirp4netns configuring the namespace at the same time makes
 * that setup fail.
 */
async function netnsReady(pid: number, timeoutMs = 5_000): Promise<void> {
  const own = readlinkSync("/proc/self/ns/net");
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 20)) {
    try {
      if (
        readlinkSync(`/proc/${pid}/ns/net`) !== own &&
        readFileSync(`/proc/${pid}/net/fib_trie`, "utf8").includes("127.0.0.1")
      )
        return;
    } catch (err) {
      throw new Error(`the sandbox exited while its network was being set up (${(err as Error).message})`);
    }
    if (Date.now() > deadline) throw new Error("the sandbox's network namespace did not come up in time");
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** True when slirp4netns can be run. */
export function slirpAvailable(path = "slirp4netns"): boolean {
  try {
    execFileSync(path, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * Gives the network namespace of `pid` its tap device and routes. Resolves once the sandbox may
 * start; rejects with what went wrong. `stop()` ends slirp4netns when the step is over.
 */
export async function startEgress(pid: number, allow: string[], slirpPath = "slirp4netns"): Promise<Egress> {
  const asRoot = process.getuid?.() === 0;
  // bwrap moves the sandbox into a nested user namespace (to switch to the step's uid) after it set
  // up the network namespace, and that nested namespace does not own it. slirp4netns joins the
  // target's user namespace unless told otherwise: as root it needs none (its own, which it cannot
  // join, so it stays), and otherwise the outer one, held open here before the sandbox moves on.
  const outer = asRoot ? null : openSync(`/proc/${pid}/ns/user`, "r");
  const usernsPath = outer === null ? "/proc/self/ns/user" : `/proc/${process.pid}/fd/${outer}`;
  try {
    await netnsReady(pid);
    return await attach(pid, allow, slirpPath, usernsPath);
  } finally {
    if (outer !== null) closeSync(outer);
  }
}

async function attach(pid: number, allow: string[], slirpPath: string, usernsPath: string): Promise<Egress> {
  const userns = [`--userns-path=${usernsPath}`];
  const slirp: ChildProcess = spawn(
    slirpPath,
    ["--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3", ...userns, String(pid), "tap0"],
    { stdio: ["ignore", "ignore", "pipe", "pipe"] },
  );
  slirp.stdio[3]?.on("error", () => {});
  const stop = () => {
    if (slirp.exitCode === null && slirp.signalCode === null) slirp.kill("SIGKILL");
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let stderr = "";
      slirp.stderr?.on("data", (b: Buffer) => {
        stderr += b.toString();
      });
      slirp.stdio[3]?.once("data", () => resolve());
      slirp.once("error", (err) => reject(new Error(`cannot start slirp4netns: ${err.message}`)));
      slirp.once("exit", (code) =>
        reject(new Error(`slirp4netns exited with ${code}: ${stderr.trim().replace(/\n/g, "; ")}`)),
      );
    });
    const nsenter =
      usernsPath === "/proc/self/ns/user"
        ? [`--net=/proc/${pid}/ns/net`]
        : [`--user=${usernsPath}`, `--net=/proc/${pid}/ns/net`, "--preserve-credentials"];
    execFileSync("nsenter", [...nsenter, "ip", "-batch", "-"], {
      input: routeBatch(allow),
      stdio: ["pipe", "ignore", "pipe"],
    });
  } catch (err) {
    stop();
    throw err;
  }
  slirp.stdio[3]?.destroy();
  return { stop };
}
