import { execFile } from "node:child_process";
import { constants, existsSync, readFileSync } from "node:fs";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { Agent, request } from "undici";

/** One line of `skiff doctor`: what was checked, what was found, and what to do when it failed. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  next?: string;
}

function run(cmd: string, args: string[], timeoutMs = 5000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stderr: String(stderr) }));
      else resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function firstLine(text: string): string {
  return text.trim().split("\n")[0] ?? "";
}

function readSysctl(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return null;
  }
}

const isRoot = () => process.getuid?.() === 0;

/** The Docker Engine answers `GET /_ping` on its socket (DOCKER_HOST=unix://... is honoured). */
export async function checkDocker(): Promise<Check> {
  const host = process.env.DOCKER_HOST;
  const socketPath = host?.startsWith("unix://") ? host.slice("unix://".length) : "/var/run/docker.sock";
  const name = "docker";
  const only = "(needed only for the docker sandbox)";
  const dispatcher = new Agent({ connect: { socketPath, timeout: 3000 } });
  try {
    const res = await request("http://docker/_ping", { dispatcher, headersTimeout: 3000, bodyTimeout: 3000 });
    const body = (await res.body.text()).trim();
    if (res.statusCode !== 200 || body !== "OK")
      return {
        name,
        ok: false,
        detail: `the engine on ${socketPath} answered ${res.statusCode} ${body.slice(0, 100)}`,
        next: `check the Docker daemon's log (\`journalctl -u docker\`) ${only}`,
      };
    const version = res.headers["api-version"];
    return { name, ok: true, detail: `engine answers on ${socketPath}${version ? ` (API ${version})` : ""}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      return {
        name,
        ok: false,
        detail: `no Docker socket at ${socketPath}`,
        next: `install Docker Engine and start it (\`sudo systemctl start docker\`) ${only}`,
      };
    if (code === "EACCES")
      return {
        name,
        ok: false,
        detail: `permission denied on ${socketPath}`,
        next: `add this user to the docker group (\`sudo usermod -aG docker $USER\`, then log in again) ${only}`,
      };
    return {
      name,
      ok: false,
      detail: `the engine on ${socketPath} does not answer (${code ?? (err as Error).message})`,
      next: `start the daemon (\`sudo systemctl start docker\`) ${only}`,
    };
  } finally {
    await dispatcher.close().catch(() => {});
  }
}

/** bubblewrap is installed and can make the namespaces the bwrap driver uses. */
export async function checkBwrap(): Promise<Check> {
  const name = "bubblewrap";
  const only = "(or use the docker sandbox)";
  let version: string;
  try {
    const res = await run("bwrap", ["--version"]);
    version = firstLine(res.stdout || res.stderr) || "bubblewrap";
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ENOENT";
    return {
      name,
      ok: false,
      detail: missing ? "bwrap is not installed" : `bwrap --version failed: ${(err as Error).message}`,
      next: `install it: \`sudo apt-get install bubblewrap\` (dnf/apk: bubblewrap) ${only}`,
    };
  }
  try {
    await run("bwrap", ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"]);
    return { name, ok: true, detail: `${version}; the namespace probe ran a sandboxed /bin/true` };
  } catch (err) {
    const why = firstLine((err as { stderr?: string }).stderr ?? "") || (err as Error).message;
    return {
      name,
      ok: false,
      detail: `${version} is installed but cannot create namespaces: ${why}`,
      next: `enable unprivileged user namespaces (see the user namespaces line) or run the worker as root ${only}`,
    };
  }
}

/** The kernel lets unprivileged users create user namespaces (what bwrap needs when not root). */
export function checkUserNamespaces(): Check {
  const name = "user namespaces";
  if (!existsSync("/proc/self/ns/user"))
    return {
      name,
      ok: false,
      detail: "this kernel has no user namespaces (or this is not Linux)",
      next: "run workers on Linux with CONFIG_USER_NS, or use the docker sandbox",
    };
  const max = readSysctl("/proc/sys/user/max_user_namespaces");
  if (max === "0")
    return {
      name,
      ok: false,
      detail: "disabled: user.max_user_namespaces is 0",
      next: "`sudo sysctl -w user.max_user_namespaces=15000` (and persist it in /etc/sysctl.d/)",
    };
  if (!isRoot()) {
    if (readSysctl("/proc/sys/kernel/unprivileged_userns_clone") === "0")
      return {
        name,
        ok: false,
        detail: "unprivileged use disabled: kernel.unprivileged_userns_clone is 0",
        next: "`sudo sysctl -w kernel.unprivileged_userns_clone=1` (and persist it), or run the worker as root",
      };
    if (readSysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") === "1")
      return {
        name,
        ok: false,
        detail: "AppArmor restricts unprivileged user namespaces",
        next: "add an AppArmor profile allowing `userns` for /usr/bin/bwrap, or `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
      };
  }
  return {
    name,
    ok: true,
    detail: `available${max ? ` (max ${max})` : ""}${isRoot() ? "; running as root" : ""}`,
  };
}

const CGROUP_ROOT = "/sys/fs/cgroup";

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the bwrap driver puts a step's cgroup (memory, CPU and PID limits) can be written. */
export async function checkCgroups(): Promise<Check> {
  const name = "cgroups";
  const next =
    "bwrap steps then run without memory/CPU/PID limits (wall-clock timeout only): run the worker as root, " +
    "under systemd with delegation (`systemd-run -p Delegate=yes --scope skiff worker ...`), or use the docker sandbox";
  if (existsSync(join(CGROUP_ROOT, "cgroup.controllers"))) {
    const controllers = readSysctl(join(CGROUP_ROOT, "cgroup.controllers")) ?? "";
    const missing = ["memory", "pids", "cpu"].filter((c) => !controllers.split(/\s+/).includes(c));
    const dir = existsSync(join(CGROUP_ROOT, "skiff")) ? join(CGROUP_ROOT, "skiff") : CGROUP_ROOT;
    if (!(await writable(dir))) return { name, ok: false, detail: `v2, but ${dir} is not writable`, next };
    if (missing.length > 0)
      return {
        name,
        ok: false,
        detail: `v2, writable, but without the ${missing.join(", ")} controller(s)`,
        next,
      };
    return { name, ok: true, detail: `v2, ${dir} writable (memory, cpu and pids limits enforced)` };
  }
  const v1 = ["memory", "pids"].map((c) => join(CGROUP_ROOT, c));
  if (v1.every((d) => existsSync(d))) {
    const dirs = v1.map((d) => (existsSync(join(d, "skiff")) ? join(d, "skiff") : d));
    const blocked: string[] = [];
    for (const d of dirs) if (!(await writable(d))) blocked.push(d);
    if (blocked.length > 0)
      return { name, ok: false, detail: `v1, but ${blocked.join(" and ")} not writable`, next };
    return { name, ok: true, detail: "v1, memory and pids hierarchies writable (limits enforced)" };
  }
  return { name, ok: false, detail: `no cgroup hierarchy under ${CGROUP_ROOT}`, next };
}

/** slirp4netns, which gives `network: on` bwrap steps egress without the host's network. */
export async function checkSlirp(): Promise<Check> {
  const name = "slirp4netns";
  try {
    const res = await run("slirp4netns", ["--version"]);
    return {
      name,
      ok: true,
      detail: `${firstLine(res.stdout)}; network: on bwrap steps get egress with no route to this host`,
    };
  } catch {
    return {
      name,
      ok: false,
      detail: "not installed: network: on steps under bwrap fail (they never share the host's network)",
      next: "install it: `sudo apt-get install slirp4netns` (or run such jobs on docker workers)",
    };
  }
}

/**
 * The Docker engine cannot keep a container on a network from the host by itself: what an online
 * step reaches is the operator's network's doing. This line says so whenever Docker is there.
 */
export function dockerEgressNote(docker: Check): Check {
  return {
    name: "docker egress",
    ok: true,
    detail: docker.ok
      ? "network: on docker steps use the worker's dockerOnlineNetwork (default bridge), which reaches this host's services unless you isolate it (docs/security.md, 'Docker egress')"
      : "docker is not in use here",
    ...(docker.ok
      ? {
          next: "give docker workers a network whose host-side firewall drops traffic to the host and private ranges (docs/security.md, 'Docker egress')",
        }
      : {}),
  };
}
