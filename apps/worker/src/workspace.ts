import { execFile } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A job's workspace directory, with its disk limit when one could be enforced. */
export interface Workspace {
  path: string;
  /** How the disk limit is enforced, or why it is not, for the sandbox's description line. */
  disk: string;
  /** Whether writes past the limit fail (ENOSPC) rather than fill the host's disk. */
  limited: boolean;
  /** True when the last step failed because the workspace is full. */
  full(): boolean;
  destroy(): Promise<void>;
}

let mkfs: Promise<boolean> | null = null;
function hasMkfs(): Promise<boolean> {
  mkfs ??= run("mkfs.ext4", ["-V"]).then(
    () => true,
    () => false,
  );
  return mkfs;
}

/**
 * Makes the workspace. As root, it is its own ext4 filesystem in a sparse image of `diskMb`, loop
 * mounted `nosuid,nodev`: a job that writes more gets ENOSPC and the host's disk is untouched.
 * Without root, or without mkfs.ext4, it is a plain directory and the description says so. When the
 * worker could make one but making this one fails, it throws: the job must not run without its limit.
 */
export async function createWorkspace(root: string, prefix: string, diskMb: number): Promise<Workspace> {
  mkdirSync(root, { recursive: true });
  reachable(root);
  const path = mkdtempSync(join(root, prefix));
  const plain = (why: string): Workspace => ({
    path,
    disk: `workspace disk not limited (${why})`,
    limited: false,
    full: () => false,
    destroy: async () => rmSync(path, { recursive: true, force: true }),
  });
  if (process.getuid?.() !== 0) return plain("needs the worker to run as root");
  if (!(await hasMkfs())) return plain("mkfs.ext4 is not installed: apt-get install e2fsprogs");
  const image = join(root, `.${basename(path)}.img`);
  try {
    // Checked and recorded before the first await, so jobs starting together cannot both count
    // the same free space.
    promise(root, image, diskMb);
  } catch (err) {
    rmSync(path, { recursive: true, force: true });
    throw err;
  }
  try {
    await run("truncate", ["-s", `${diskMb}M`, image]);
    await run("mkfs.ext4", [
      "-q",
      "-F",
      "-m",
      "0",
      "-E",
      "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
      image,
    ]);
    await run("mount", ["-o", "loop,nosuid,nodev", image, path]);
  } catch (err) {
    promised.delete(image);
    // The worker can make limited workspaces (it is root and has the tools), so this one failing is
    // about this job or the host's state now: refuse to run it unlimited rather than fail open.
    rmSync(image, { force: true });
    rmSync(path, { recursive: true, force: true });
    // The tool's own words (its last line on stderr) say more than "Command failed: …".
    const e = err as Error & { stderr?: string };
    const said = e.stderr?.trim().split("\n").at(-1);
    throw new Error(`cannot set up its disk limit of ${diskMb} MiB: ${said || e.message.split("\n")[0]}`);
  }
  rmdirSync(join(path, "lost+found"));
  return {
    path,
    disk: `workspace and /tmp limited to ${diskMb} MiB each`,
    limited: true,
    full: () => {
      try {
        return nearlyFull(path);
      } catch {
        return false;
      }
    },
    destroy: async () => {
      await unmount(path);
      rmSync(image, { force: true });
      promised.delete(image);
      rmSync(path, { recursive: true, force: true });
    },
  };
}

/**
 * The sandbox's user is not root and must be able to walk down to the workspace. Directories the
 * worker owns get the search bit for others (never read): the work directory, and above it up to,
 * not including, a top-level directory or a home directory (SKIFF_HOME is 0700 for its token). Any
 * other directory on the way that lacks it is named, with the fix.
 */
function reachable(root: string): void {
  if (process.getuid?.() !== 0) return;
  const home = homedir();
  for (let dir = root; dir !== dirname(dir); dir = dirname(dir)) {
    const info = statSync(dir);
    if ((info.mode & 0o001) !== 0) continue;
    const mine = info.uid === process.getuid?.();
    const topLevel = dirname(dir) === "/";
    if (mine && !topLevel && dir !== home) {
      chmodSync(dir, (info.mode & 0o7777) | 0o001);
      continue;
    }
    throw new Error(
      `the sandbox's user cannot reach workspaces under ${root}: ${dir} is not searchable by others ` +
        `(chmod o+x ${dir}, or give the worker another --work-dir)`,
    );
  }
}

/**
 * The disk each live workspace image may still take: images are sparse, so a job's limit is a
 * promise on the free space of the filesystem they live on, kept here for this process's jobs (every worker of `skiff up`
 * runs in one process). Separate worker processes on one filesystem do not see each other's.
 */
const promised = new Map<string, { dev: number; limit: number }>();

/** What the live workspaces on filesystem `dev` may still write: their limits less what they hold. */
function owedOn(dev: number): number {
  let owed = 0;
  for (const [img, p] of promised) {
    // Only promises on this filesystem draw on its free space.
    if (p.dev !== dev) continue;
    let used = 0;
    try {
      used = statSync(img).blocks * 512;
    } catch {
      // not made yet: all of it is owed
    }
    owed += Math.max(0, p.limit - used);
  }
  return owed;
}

function promise(root: string, image: string, diskMb: number): void {
  const want = diskMb * MIB;
  const fs = statfsSync(root);
  const free = fs.bavail * fs.bsize;
  const dev = statSync(root).dev;
  const owed = owedOn(dev);
  if (free - owed < want)
    throw new Error(
      `not enough free disk under ${root} for a ${diskMb} MiB workspace: ${Math.floor(free / MIB)} MiB free, ` +
        `${Math.ceil(owed / MIB)} MiB of it promised to the jobs running now; lower resources.diskMb, ` +
        "the worker's slots or maxDiskMb, or free some space",
    );
  promised.set(image, { dev, limit: want });
}

const MIB = 1024 * 1024;

/**
 * How many more workspaces of `diskMb` the work directory's filesystem can be promised now, or
 * null when this worker makes no limited workspaces (not root, no mkfs.ext4): the claim loop asks
 * for no more jobs than that, so a worker short of disk leaves jobs to others instead of failing them.
 */
export async function diskRoom(root: string, diskMb: number): Promise<number | null> {
  if (process.getuid?.() !== 0 || !(await hasMkfs())) return null;
  mkdirSync(root, { recursive: true });
  const fs = statfsSync(root);
  return Math.max(0, Math.floor((fs.bavail * fs.bsize - owedOn(statSync(root).dev)) / (diskMb * MIB)));
}

/** Whether a writer hit the end of the filesystem at `path` (ext4 keeps a few blocks back). */
function nearlyFull(path: string): boolean {
  const s = statfsSync(path);
  const free = s.bavail * s.bsize;
  return free < Math.max(1024 * 1024, (s.blocks * s.bsize) / 100);
}

async function unmount(path: string): Promise<void> {
  try {
    await run("umount", [path]);
  } catch {
    // Still busy (a process of the job not yet gone): detach now, the kernel frees it when idle.
    await run("umount", ["-l", path]).catch(() => {});
  }
}

/** Unmounts workspaces a previous life of this worker left mounted under `root`. */
export async function unmountLeftovers(root: string): Promise<void> {
  if (!existsSync("/proc/self/mounts")) return;
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .map((p) => p.replace(/\\040/g, " "))
    .filter((p) => p.startsWith(`${root}/`));
  for (const m of mounts) await unmount(m);
}
