import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { chown, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { createStepCgroup, type StepCgroup } from "./cgroup.ts";
import { describeEgress, type Egress, SLIRP_DNS, slirpAvailable, startEgress } from "./egress.ts";
import { seccompFilter } from "./seccomp.ts";
import { superviseChild } from "./supervise.ts";
import type { SandboxDriver, StepEnd, StepRun } from "./types.ts";

const run = promisify(execFile);

export interface BwrapOptions {
  /** A root filesystem to use instead of the host's system directories. */
  rootfs?: string;
  bwrapPath?: string;
  /** Uid and gid the step runs as inside its user namespace. */
  uid?: number;
  /**
   * The unprivileged host uid (and gid) the sandbox's user maps to when the worker runs as root:
   * bwrap is started as that user, so nothing in a step is root on the host. 0 leaves bwrap
   * privileged, for tests only (the worker's config refuses it).
   */
  hostUid?: number;
  /** IPv4 networks `network: on` steps may reach although they are private or the host's own. */
  egressAllow?: string[];
  slirp4netnsPath?: string;
  /** Whether this bubblewrap has `--disable-userns` (0.8 and later); asked of bwrap when absent. */
  disableUserns?: boolean;
  /** The seccomp filter; on unless a test takes it away to attack the wall behind it. */
  seccomp?: boolean;
}

// The host directories a step sees, read-only. Merged-/usr hosts have /bin etc. as symlinks.
const SYSTEM_DIRS = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib64",
  "/lib32",
  "/etc/alternatives",
  "/etc/ssl",
  "/etc/ca-certificates",
];
const SYSTEM_FILES = [
  "/etc/passwd",
  "/etc/group",
  "/etc/hosts",
  "/etc/resolv.conf",
  "/etc/nsswitch.conf",
  "/etc/ld.so.cache",
];

/** The sandbox's read-only root: the operator's rootfs, or those of the host's system paths it has. */
function rootArgs(rootfs: string | undefined): string[] {
  // Stryker disable next-line StringLiteral: bwrap takes an empty destination as the new root, "/".
  if (rootfs) return ["--ro-bind", rootfs, "/"];
  return [...SYSTEM_DIRS, ...SYSTEM_FILES]
    .filter((path) => existsSync(path))
    .flatMap((path) => ["--ro-bind", path, path]);
}

/** File descriptors the driver hands to bwrap for one step. */
export interface BwrapFds {
  /** An open directory fd of the workspace, bound at /workspace without bwrap resolving the path. */
  workspace?: number;
  seccomp?: number;
  /** For `network: on`: bwrap reports the sandbox's pid here and waits on `block` for its network. */
  status?: number;
  block?: number;
  /** A resolv.conf naming the user-mode network's resolver. */
  resolvConf?: string;
}

/** The bubblewrap command line for one step (docs/design.md §6). */
export function bwrapArgs(step: StepRun, opts: BwrapOptions, fds: BwrapFds = {}): string[] {
  const uid = String(opts.uid ?? 1000);
  const tmpBytes = String((step.limits.diskMb ?? 10_240) * 1024 * 1024);
  const args = [
    // Every namespace, the network included: `network: on` gets user-mode networking, never the host's.
    "--unshare-all",
    "--unshare-user",
    // No user namespaces inside: they would hand a step a fresh set of capabilities. The seccomp
    // filter refuses them too, for a bubblewrap without this option.
    ...(opts.disableUserns === false ? [] : ["--disable-userns"]),
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
    "--uid",
    uid,
    "--gid",
    uid,
    "--hostname",
    "skiff-sandbox",
    ...rootArgs(opts.rootfs),
    ...(fds.resolvConf ? ["--ro-bind", fds.resolvConf, "/etc/resolv.conf"] : []),
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    // /dev is bwrap's own tmpfs: a sized /dev/shm (Docker's default 64 MiB), the rest read-only.
    "--size",
    String(64 * 1024 * 1024),
    "--tmpfs",
    "/dev/shm",
    "--remount-ro",
    "/dev",
    "--size",
    tmpBytes,
    "--tmpfs",
    "/tmp",
    // The path (bench/sandbox.ts) and the descriptor (the driver) name the same directory, which no
    // step can replace; the descriptor only spares bwrap resolving it again. Which one is used cannot
    // be seen from inside the sandbox.
    // Stryker disable all: equivalent, as above
    ...(fds.workspace === undefined
      ? ["--bind", step.workspace, "/workspace"]
      : ["--bind-fd", String(fds.workspace), "/workspace"]),
    // Stryker restore all
    "--chdir",
    "/workspace",
    // The root bwrap builds is a writable tmpfs: make it read-only once everything is mounted.
    "--remount-ro",
    // Stryker disable next-line StringLiteral: bwrap takes an empty path as the new root, "/".
    "/",
    ...(fds.seccomp === undefined ? [] : ["--seccomp", String(fds.seccomp)]),
    ...(fds.status === undefined ? [] : ["--json-status-fd", String(fds.status)]),
    ...(fds.block === undefined ? [] : ["--block-fd", String(fds.block)]),
    "--clearenv",
    "--setenv",
    "HOME",
    "/workspace",
    "--setenv",
    "PATH",
    "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "--setenv",
    "TMPDIR",
    "/tmp",
  ];
  for (const [k, v] of Object.entries(step.env)) args.push("--setenv", k, v);
  args.push("--", "/bin/sh", "-c", step.command);
  return args;
}

/**
 * Runs steps under bubblewrap: own user, PID, IPC, UTS, mount and network namespaces (the network
 * shared only for `network: on`), all capabilities dropped, read-only system directories, the
 * workspace and a tmpfs `/tmp` writable, and a cgroup for memory, CPU and PIDs where one can be made.
 */
export function createBwrapDriver(opts: BwrapOptions = {}): SandboxDriver {
  const bwrap = opts.bwrapPath ?? "bwrap";
  // Written once per driver: the seccomp program and the resolv.conf of user-mode networking.
  const dir = mkdtempSync(join(tmpdir(), "skiff-bwrap-"));
  chmodSync(dir, 0o755); // bwrap reads these as the unprivileged sandbox user
  const filter = opts.seccomp === false ? null : seccompFilter();
  const seccompFile = filter ? join(dir, "seccomp.bpf") : null;
  if (seccompFile && filter) writeFileSync(seccompFile, filter, { mode: 0o444 });
  const resolvConf = join(dir, "resolv.conf");
  writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o444 });
  const shared: Shared = { seccompFile, resolvConf };
  const stepOpts = { ...opts, disableUserns: opts.disableUserns ?? bwrapHas(bwrap, "--disable-userns") };
  return {
    kind: "bwrap",
    async check() {
      try {
        await run(bwrap, ["--version"]);
      } catch {
        throw new Error(
          "bubblewrap is not installed: `apt-get install bubblewrap` (or use --sandbox docker)",
        );
      }
      // What every step needs: the namespaces, a fresh /proc and /dev, the sandbox's hostname. A
      // container that allows the namespaces but masks /proc would pass a lesser probe and then
      // fail every job.
      try {
        await run(bwrap, [
          "--unshare-all",
          "--unshare-user",
          "--die-with-parent",
          "--ro-bind",
          "/",
          "/",
          "--proc",
          "/proc",
          "--dev",
          "/dev",
          "--hostname",
          "skiff-probe",
          "--",
          "/bin/true",
        ]);
      } catch (err) {
        throw new Error(bwrapProbeFailure((err as Error).message));
      }
    },
    run: (step) => runStep(bwrap, step, stepOpts, shared),
    async reapOrphans(workerName) {
      const removed: string[] = [];
      for (const base of [
        "/sys/fs/cgroup/skiff",
        "/sys/fs/cgroup/pids/skiff",
        "/sys/fs/cgroup/memory/skiff",
        "/sys/fs/cgroup/cpu/skiff",
      ]) {
        if (!existsSync(base)) continue;
        for (const name of readdirSync(base)) {
          if (!name.startsWith(`${cgroupPrefix(workerName)}`)) continue;
          const dir = join(base, name);
          try {
            rmdirSync(dir);
            removed.push(name);
          } catch {
            // still populated: a live step of another process with the same name; leave it
          }
        }
      }
      return removed;
    },
  };
}

/** What to do when the driver's probe fails, by what bubblewrap said. */
export function bwrapProbeFailure(message: string): string {
  const lines = message.split("\n");
  const said = lines.find((l) => l.startsWith("bwrap:")) ?? lines[0] ?? message;
  const container =
    "in a container, use the seccomp profile deploy/seccomp/skiff-worker.json, an unmasked /proc " +
    "(docker: --security-opt systempaths=unconfined; Kubernetes: procMount: Unmasked) and no AppArmor " +
    "mount rule (apparmor=unconfined); see docs/operations.md";
  if (/mount proc|proc on/i.test(said))
    return `bubblewrap cannot mount a fresh /proc here (${said}): parts of this /proc are masked; ${container}`;
  return (
    `bubblewrap cannot create namespaces here (${said}): on a host, enable unprivileged user namespaces ` +
    `(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone=1) or run the worker as root; ${container}`
  );
}

/** Whether this bubblewrap knows an option (older ones lack --disable-userns). */
function bwrapHas(bwrap: string, option: string): boolean {
  try {
    return execFileSync(bwrap, ["--help"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).includes(option);
  } catch {
    return false;
  }
}

function cgroupPrefix(workerName: string): string {
  return `${workerName.replace(/[^A-Za-z0-9_.-]/g, "_")}--`;
}

interface Shared {
  seccompFile: string | null;
  resolvConf: string;
}

const DEFAULT_HOST_UID = 64_000;

/** The sandbox's user owns the workspace on the host, so it can write there without being root. */
async function handOver(workspace: string, hostUid: number): Promise<void> {
  const info = await stat(workspace);
  if (info.uid !== hostUid || info.gid !== hostUid) await chown(workspace, hostUid, hostUid);
}

async function runStep(bwrap: string, step: StepRun, opts: BwrapOptions, shared: Shared): Promise<StepEnd> {
  const online = step.network === "on";
  if (online && !slirpAvailable(opts.slirp4netnsPath)) {
    step.onLine("system", "sandbox: network: on needs slirp4netns on the worker; the step was not run");
    return {
      outcome: "failed",
      exitCode: null,
      reason: "network: on needs slirp4netns on the worker (apt-get install slirp4netns)",
    };
  }
  const asRoot = process.getuid?.() === 0;
  const hostUid = asRoot ? (opts.hostUid ?? DEFAULT_HOST_UID) : (process.getuid?.() ?? -1);
  // hostUid 0 keeps bwrap privileged (tests of the capability wall use it); never a worker default.
  const dropToHostUid = asRoot && hostUid !== 0;
  if (dropToHostUid) await handOver(step.workspace, hostUid);
  const made = createStepCgroup(
    `${cgroupPrefix(step.workerName)}${step.jobId}-${step.stepIndex}`,
    step.limits,
  );
  const cgroup: StepCgroup | null = made.cgroup;
  const net = online ? describeEgress(opts.egressAllow ?? []) : "no network";
  step.onLine(
    "system",
    `sandbox: bwrap, own user/pid/ipc/uts/mount/net namespaces, ${net}, caps dropped, ` +
      `${shared.seccompFile ? "seccomp filter (no user namespaces)" : "no seccomp filter (unsupported architecture)"}, ` +
      `uid ${opts.uid ?? 1000} (host uid ${hostUid}), ` +
      `read-only ${opts.rootfs ? `rootfs ${opts.rootfs}` : "host system dirs"}, writable /workspace and /tmp; limits: ` +
      (made.cgroup ? made.cgroup.enforced : `none enforced (${made.reason}); wall-clock timeout only`),
  );
  const workspaceFd = openSync(step.workspace, constants.O_RDONLY | constants.O_DIRECTORY);
  const seccompFd = shared.seccompFile ? openSync(shared.seccompFile, "r") : null;
  const args = bwrapArgs(step, opts, {
    workspace: 3,
    ...(seccompFd === null ? {} : { seccomp: 4 }),
    ...(online ? { status: 5, block: 6, resolvConf: shared.resolvConf } : {}),
  });
  // As root, bwrap starts as the unprivileged host uid, so the sandbox's user maps to it and not to root.
  const command = [
    ...(dropToHostUid ? ["setpriv", `--reuid=${hostUid}`, `--regid=${hostUid}`, "--clear-groups"] : []),
    bwrap,
    "--args",
    "7",
    ...args.slice(args.lastIndexOf("--")),
  ];
  const stdio: ("ignore" | "pipe" | number)[] = [
    "ignore",
    "pipe",
    "pipe",
    workspaceFd,
    seccompFd ?? "ignore",
    online ? "pipe" : "ignore",
    online ? "pipe" : "ignore",
    // bwrap's options (the job's environment, secrets among them) go through a pipe, so they are
    // not on a command line for `ps` or the sandbox's /proc/1/cmdline.
    "pipe",
  ];
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
  // A process group of its own: Ctrl-C in the terminal that runs the worker (`skiff up`) goes to the
  // worker, which drains, and not straight to the step, which would die of it mid-job.
  const spawnOpts = { env, stdio, cwd: "/", detached: true };
  // Join the cgroup before bwrap starts so that every process of the step is inside it from the start.
  let child: ChildProcess;
  try {
    child = cgroup
      ? spawn(
          "/bin/sh",
          [
            "-c",
            'for f in $1; do echo $$ > "$f"; done; shift; exec "$@"',
            "skiff-step",
            cgroup.procsFiles.join(" "),
            ...command,
          ],
          spawnOpts,
        )
      : spawn(command[0] as string, command.slice(1), spawnOpts);
  } finally {
    closeSync(workspaceFd);
    if (seccompFd !== null) closeSync(seccompFd);
  }
  const argPipe = (child.stdio as unknown as (Writable | null)[])[7];
  argPipe?.on("error", () => {}); // bwrap may be gone already; it then fails on its own
  // bwrap takes options from the pipe; the command itself stays on its command line.
  argPipe?.end(`${args.slice(0, args.lastIndexOf("--")).join("\0")}\0`);

  let egress: Egress | null = null;
  let egressError: string | null = null;
  // The sandbox's first process, once bwrap has said it (online steps). Without a cgroup (a worker
  // that is not root), killing bwrap alone does not end it: it outlives bwrap, holding the step's
  // output open, and the step would never end. It is PID 1 of the step's PID namespace, so killing
  // it ends every process in there.
  let sandbox: number | null = null;
  const killSandbox = () => {
    if (cgroup || sandbox === null) return;
    try {
      process.kill(sandbox, "SIGKILL");
    } catch {
      // gone already
    }
  };
  if (online) {
    try {
      const pipes = child.stdio as unknown as (Readable | Writable | null)[];
      // The sandbox may exit at any moment; its end of these sockets then resets.
      for (const p of pipes.slice(5)) p?.on("error", () => {});
      sandbox = await sandboxPid(pipes[5] as Readable);
      egress = await startEgress(sandbox, opts.egressAllow ?? [], opts.slirp4netnsPath);
      (pipes[6] as Writable).end("go");
    } catch (err) {
      egressError = (err as Error).message;
      killSandbox();
      signalAll(child, cgroup, "SIGKILL");
    }
  }

  const exit = await superviseChild(child, step, (sig) => {
    if (sig === "SIGKILL") killSandbox();
    signalAll(child, cgroup, sig);
  });
  egress?.stop();
  const ending = exit.ending;
  const oom = cgroup?.oomKilled() ?? false;
  const pidsHit = cgroup?.pidsLimitHit() ?? false;
  await cgroup?.destroy();

  const code = exit.code;
  if (egressError) {
    return {
      outcome: "failed",
      exitCode: null,
      reason: `could not set up the step's network: ${egressError}`,
    };
  }
  if (ending === "timed_out") {
    return {
      outcome: "timed_out",
      exitCode: code,
      reason: `step ran past its timeout of ${Math.round(step.timeoutMs / 1000)} s`,
    };
  }
  if (ending === "canceled") return { outcome: "canceled", exitCode: code, reason: "canceled" };
  if (code === 0 && !oom) return { outcome: "succeeded", exitCode: 0 };
  if (oom)
    return { outcome: "failed", exitCode: code, reason: `out of memory (limit ${step.limits.memoryMb} MiB)` };
  if (pidsHit) {
    return { outcome: "failed", exitCode: code, reason: `hit the process limit (${step.limits.pids} pids)` };
  }
  return {
    outcome: "failed",
    exitCode: code,
    reason: code === null ? `killed by ${exit.signal}` : `exit code ${code}`,
  };
}

/** The sandbox's pid, from bwrap's JSON status stream. */
function sandboxPid(status: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (b: Buffer) => {
      buf += b.toString();
      const match = /"child-pid"\s*:\s*(\d+)/.exec(buf);
      if (match) {
        status.off("data", onData);
        status.resume();
        resolve(Number(match[1]));
      }
    };
    status.on("data", onData);
    status.once("end", () => reject(new Error("bwrap exited before the sandbox started")));
  });
}

/**
 * Signals every process of the step: through its cgroup when there is one, else bwrap itself.
 * SIGTERM skips bubblewrap's own processes (the monitor outside and the init inside): either dying
 * takes the whole sandbox down at once (--die-with-parent), which would turn the grace period
 * into an immediate kill. A step process that names itself `bwrap` only escapes SIGTERM: SIGKILL
 * after the grace period reaches every process.
 */
function signalAll(child: ChildProcess, cgroup: StepCgroup | null, signal: NodeJS.Signals): void {
  const all = cgroup?.pids() ?? [];
  const pids = signal === "SIGKILL" ? all : all.filter((pid) => pid !== child.pid && !isBwrap(pid));
  if (all.length > 0 && pids.length === 0) return; // only bubblewrap left: it ends with the step
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
  if (all.length === 0) child.kill(signal);
}

function isBwrap(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "bwrap";
  } catch {
    return false; // gone
  }
}
