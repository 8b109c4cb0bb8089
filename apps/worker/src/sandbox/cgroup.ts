import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Limits {
  memoryMb: number;
  cpus: number;
  pids: number;
  /** Disk for the workspace and /tmp, each (enforced by the workspace and the driver's /tmp). */
  diskMb?: number;
}

/** A cgroup holding one sandboxed step, in whichever cgroup version the host has. */
export interface StepCgroup {
  /** Files to write the sandbox's pid into, before it starts anything. */
  procsFiles: string[];
  /** What is enforced, said in the job log: e.g. "memory 512 MiB, pids 256, cpu 1 (cgroup v1)". */
  enforced: string;
  oomKilled(): boolean;
  pidsLimitHit(): boolean;
  pids(): number[];
  destroy(): Promise<void>;
}

const ROOT = "/sys/fs/cgroup";

function write(file: string, value: string): void {
  writeFileSync(file, value);
}

function read(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function counter(text: string, key: string): number {
  const m = new RegExp(`^${key} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

function pidsIn(file: string): number[] {
  return read(file)
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

function removeDir(dir: string): boolean {
  try {
    if (existsSync(dir)) rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes the step's cgroup directories, retrying for a short while: the step's processes leave
 * the cgroup asynchronously as they exit (even after bwrap itself has been reaped), and rmdir of a
 * cgroup that still lists one fails. Removing only once meant that on a busy host a good share of
 * steps left an empty cgroup behind for the life of the worker. What still will not go (a process
 * that refuses to die) is left for the orphan sweep at the next start.
 */
async function removeDirs(dirs: string[], timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let left = dirs.filter((d) => !removeDir(d));
  // The processes are usually out within a millisecond or two, so the first retries come quickly
  // (a flat 10 ms wait was most of the driver's overhead per step over raw bwrap).
  let wait = 1;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(10, wait * 2);
    left = left.filter((d) => !removeDir(d));
  }
}

/**
 * Makes a cgroup for a step under `skiff/<name>` with memory, CPU and PID limits, or returns null
 * with the reason when this host does not let us (then the job log says limits are not enforced).
 */
export function createStepCgroup(
  name: string,
  limits: Limits,
): { cgroup: StepCgroup } | { cgroup: null; reason: string } {
  try {
    if (existsSync(join(ROOT, "cgroup.controllers"))) return { cgroup: v2(name, limits) };
    if (existsSync(join(ROOT, "pids")) && existsSync(join(ROOT, "memory")))
      return { cgroup: v1(name, limits) };
    return { cgroup: null, reason: "no cgroup hierarchy found under /sys/fs/cgroup" };
  } catch (err) {
    return { cgroup: null, reason: `cgroups not writable: ${(err as Error).message}` };
  }
}

function v2(name: string, limits: Limits): StepCgroup {
  const parent = join(ROOT, "skiff");
  mkdirSync(parent, { recursive: true });
  write(join(ROOT, "cgroup.subtree_control"), "+memory +pids +cpu");
  write(join(parent, "cgroup.subtree_control"), "+memory +pids +cpu");
  const dir = join(parent, name);
  mkdirSync(dir, { recursive: true });
  write(join(dir, "memory.max"), String(limits.memoryMb * 1024 * 1024));
  write(join(dir, "memory.swap.max"), "0");
  write(join(dir, "pids.max"), String(limits.pids));
  write(join(dir, "cpu.max"), `${Math.round(limits.cpus * 100_000)} 100000`);
  return {
    procsFiles: [join(dir, "cgroup.procs")],
    enforced: `memory ${limits.memoryMb} MiB, cpu ${limits.cpus}, pids ${limits.pids} (cgroup v2)`,
    oomKilled: () => counter(read(join(dir, "memory.events")), "oom_kill") > 0,
    pidsLimitHit: () => counter(read(join(dir, "pids.events")), "max") > 0,
    pids: () => pidsIn(join(dir, "cgroup.procs")),
    destroy: () => {
      try {
        write(join(dir, "cgroup.kill"), "1");
      } catch {
        // cgroup.kill needs Linux 5.14; the sandbox's own teardown killed the processes anyway.
      }
      return removeDirs([dir]);
    },
  };
}

function v1(name: string, limits: Limits): StepCgroup {
  const dirs = {
    memory: join(ROOT, "memory", "skiff", name),
    pids: join(ROOT, "pids", "skiff", name),
    cpu: join(ROOT, "cpu", "skiff", name),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const bytes = limits.memoryMb * 1024 * 1024;
  write(join(dirs.memory, "memory.limit_in_bytes"), String(bytes));
  if (existsSync(join(dirs.memory, "memory.memsw.limit_in_bytes"))) {
    write(join(dirs.memory, "memory.memsw.limit_in_bytes"), String(bytes));
  }
  write(join(dirs.pids, "pids.max"), String(limits.pids));
  let cpu = "";
  if (existsSync(join(dirs.cpu, "cpu.cfs_quota_us"))) {
    write(join(dirs.cpu, "cpu.cfs_period_us"), "100000");
    write(join(dirs.cpu, "cpu.cfs_quota_us"), String(Math.round(limits.cpus * 100_000)));
    cpu = `, cpu ${limits.cpus}`;
  }
  return {
    procsFiles: [
      join(dirs.memory, "cgroup.procs"),
      join(dirs.pids, "cgroup.procs"),
      join(dirs.cpu, "cgroup.procs"),
    ],
    enforced: `memory ${limits.memoryMb} MiB${cpu}, pids ${limits.pids} (cgroup v1)`,
    oomKilled: () =>
      counter(read(join(dirs.memory, "memory.oom_control")), "oom_kill") > 0 ||
      (Number(read(join(dirs.memory, "memory.failcnt")).trim() || 0) > 0 &&
        counter(read(join(dirs.memory, "memory.oom_control")), "under_oom") > 0),
    pidsLimitHit: () => counter(read(join(dirs.pids, "pids.events")), "max") > 0,
    pids: () => pidsIn(join(dirs.pids, "cgroup.procs")),
    destroy: () => {
      for (const pid of pidsIn(join(dirs.pids, "cgroup.procs"))) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      return removeDirs(Object.values(dirs));
    },
  };
}
