import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { createStepCgroup, type StepCgroup } from "./cgroup.ts";
import { superviseChild } from "./supervise.ts";
import type { SandboxDriver, StepEnd, StepRun } from "./types.ts";

const run = promisify(execFile);

export interface BwrapOptions {
  /** A root filesystem to use instead of the host's system directories. */
  rootfs?: string;
  bwrapPath?: string;
  /** Uid and gid the step runs as inside its user namespace. */
  uid?: number;
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

function rootArgs(rootfs: string | undefined): string[] {
  if (rootfs) return ["--ro-bind", rootfs, "/"];
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue;
    args.push("--ro-bind", dir, dir);
  }
  for (const file of SYSTEM_FILES) if (existsSync(file)) args.push("--ro-bind", file, file);
  return args;
}

/** The bubblewrap command line for one step (DESIGN §6). */
export function bwrapArgs(step: StepRun, opts: BwrapOptions): string[] {
  const uid = String(opts.uid ?? 1000);
  const args = [
    "--unshare-all",
    ...(step.network === "on" ? ["--share-net"] : []),
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
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--bind",
    step.workspace,
    "/workspace",
    "--chdir",
    "/workspace",
    // The root bwrap builds is a writable tmpfs: make it read-only once everything is mounted.
    "--remount-ro",
    "/",
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
      try {
        await run(bwrap, ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"]);
      } catch (err) {
        throw new Error(
          `bubblewrap cannot create namespaces here (${(err as Error).message.split("\n")[0]}): enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run the worker as root`,
        );
      }
    },
    run: (step) => runStep(bwrap, step, opts),
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

function cgroupPrefix(workerName: string): string {
  return `${workerName.replace(/[^A-Za-z0-9_.-]/g, "_")}--`;
}

async function runStep(bwrap: string, step: StepRun, opts: BwrapOptions): Promise<StepEnd> {
  const made = createStepCgroup(
    `${cgroupPrefix(step.workerName)}${step.jobId}-${step.stepIndex}`,
    step.limits,
  );
  const cgroup: StepCgroup | null = made.cgroup;
  const net = step.network === "on" ? "host network shared" : "no network";
  step.onLine(
    "system",
    `sandbox: bwrap, own user/pid/ipc/uts/mount/net namespaces, ${net}, caps dropped, uid ${opts.uid ?? 1000}, ` +
      `read-only ${opts.rootfs ? `rootfs ${opts.rootfs}` : "host system dirs"}, writable /workspace and /tmp; limits: ` +
      (made.cgroup ? made.cgroup.enforced : `none enforced (${made.reason}); wall-clock timeout only`),
  );
  const args = bwrapArgs(step, opts);
  // Join the cgroup before bwrap starts so that every process of the step is inside it from the start.
  const child: ChildProcess = cgroup
    ? spawn(
        "/bin/sh",
        ["-c", 'for f in $SKIFF_CGROUP_PROCS; do echo $$ > "$f"; done; exec "$0" "$@"', bwrap, ...args],
        {
          env: { SKIFF_CGROUP_PROCS: cgroup.procsFiles.join(" "), PATH: process.env.PATH ?? "/usr/bin:/bin" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      )
    : spawn(bwrap, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      });

  const exit = await superviseChild(child, step, (sig) => signalAll(child, cgroup, sig));
  const ending = exit.ending;
  const oom = cgroup?.oomKilled() ?? false;
  const pidsHit = cgroup?.pidsLimitHit() ?? false;
  await cgroup?.destroy();

  const code = exit.code;
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

/** Signals every process of the step: through its cgroup when there is one, else bwrap itself. */
function signalAll(child: ChildProcess, cgroup: StepCgroup | null, signal: NodeJS.Signals): void {
  const pids = cgroup?.pids() ?? [];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
  if (pids.length === 0) child.kill(signal);
}
