import { chown, stat } from "node:fs/promises";
import { z } from "zod";
import { API_VERSION, DockerApiError, Engine, pumpOutput } from "./docker-engine.ts";
import type { SandboxDriver, StepEnd, StepRun } from "./types.ts";

export { DockerApiError } from "./docker-engine.ts";

const SANDBOX_USER = { uid: 1000, gid: 1000 };
const MIB = 1024 * 1024;
/** How long to wait for the output stream to drain after the container stopped. */
const DRAIN_MS = 5_000;
/** setTimeout fires at once for delays beyond 2^31-1 ms (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Stop {
  outcome: "timed_out" | "canceled";
  reason: string;
  done: Promise<void>;
}

export interface DockerDriverOptions {
  socketPath?: string;
  /** Docker network for `network: on` steps. */
  onlineNetwork?: string;
  defaultImage: string;
  logger?: { warn(obj: object, msg: string): void };
}

const Created = z.object({ Id: z.string(), Warnings: z.array(z.string()).nullish() });
const Waited = z.object({ StatusCode: z.number() });
const Inspected = z.object({ State: z.object({ OOMKilled: z.boolean() }) });
const Listed = z.array(z.object({ Id: z.string(), Labels: z.record(z.string(), z.string()).nullish() }));
const PullProgress = z.object({ error: z.string().optional() });

function describeConfinement(image: string, network: string, step: StepRun): string {
  const { memoryMb, cpus, pids } = step.limits;
  return (
    `docker: image ${image}, read-only root, tmpfs /tmp, caps dropped, no-new-privileges, ` +
    `uid ${SANDBOX_USER.uid}, network ${network}${egressNote(network)}, memory ${memoryMb} MiB, cpus ${cpus}, pids ${pids}` +
    `, /tmp ${step.limits.diskMb ?? 256} MiB`
  );
}

/**
 * What an online step can reach is decided by the Docker network the operator names; the engine
 * cannot cut the host off by itself. `host` and the default `bridge` reach the worker host's
 * services, so the log says so (docs/security.md says how to isolate a network).
 */
export function egressNote(network: string): string {
  if (network === "none") return "";
  if (network === "host" || network === "bridge")
    return ` (egress NOT isolated: this network reaches the worker host's services; see docs/security.md)`;
  return " (egress as the operator's network allows)";
}

function containerSpec(step: StepRun, image: string, network: string): object {
  return {
    Image: image,
    Cmd: ["/bin/sh", "-c", step.command],
    User: `${SANDBOX_USER.uid}:${SANDBOX_USER.gid}`,
    WorkingDir: "/workspace",
    Env: Object.entries(step.env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      "skiff.job": step.jobId,
      "skiff.worker": step.workerName,
      "skiff.step": String(step.stepIndex),
    },
    // Output is read through the attach call (which names stdout and stderr itself); stdin stays
    // closed, so a step that reads it gets end of file instead of waiting out its timeout.
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ReadonlyRootfs: true,
      // exec: builds and test runners (go test, native addons) run what they compile in /tmp; the root stays read-only.
      Tmpfs: { "/tmp": `rw,exec,nosuid,nodev,size=${step.limits.diskMb ?? 256}m` },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      PidsLimit: step.limits.pids,
      Memory: step.limits.memoryMb * MIB,
      MemorySwap: step.limits.memoryMb * MIB,
      NanoCpus: Math.round(step.limits.cpus * 1e9),
      NetworkMode: network,
      // Stryker disable next-line StringLiteral: "" takes the engine's default, which is "private" on
      // the engine the tests run against; the explicit value keeps it so on one set to "shareable".
      IpcMode: "private",
      // docker-init as PID 1 passes SIGTERM on to the command; a shell as PID 1 would ignore it.
      Init: true,
      Binds: [`${step.workspace}:/workspace`],
      AutoRemove: false,
    },
  };
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;

export function createDockerDriver(opts: DockerDriverOptions): SandboxDriver {
  const socketPath = opts.socketPath ?? "/var/run/docker.sock";
  const onlineNetwork = opts.onlineNetwork ?? "bridge";
  const warn = (obj: object, msg: string) => opts.logger?.warn(obj, msg);
  const engine = new Engine(socketPath);

  async function remove(id: string): Promise<boolean> {
    try {
      await engine.text("DELETE", `/containers/${id}?force=1&v=1`);
      return true;
    } catch (err) {
      if (err instanceof DockerApiError && err.status === 404) return true;
      warn({ err, container: id }, "could not remove a step's container; the next orphan sweep will");
      return false;
    }
  }

  /** Pulls a missing image; returns why not when that fails (no registry, unknown name). */
  async function pull(image: string, step: StepRun): Promise<string | null> {
    step.onLine("system", `docker: pulling ${image}`);
    try {
      const { text } = await engine.text("POST", `/images/create?fromImage=${encodeURIComponent(image)}`, {
        long: true,
        signal: step.signal,
      });
      // Failures after the pull started come as a 200 with an `error` in the progress stream.
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        const { error } = PullProgress.parse(JSON.parse(line));
        if (error !== undefined) return error;
      }
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async function create(step: StepRun, image: string, network: string): Promise<string | StepEnd> {
    const spec = containerSpec(step, image, network);
    for (let attempt = 0; ; attempt++) {
      try {
        const created = await engine.json("POST", "/containers/create", Created, { body: spec });
        for (const w of created.Warnings ?? [])
          warn({ container: created.Id, jobId: step.jobId }, `docker: ${w}`);
        return created.Id;
      } catch (err) {
        const noImage =
          err instanceof DockerApiError && err.status === 404 && /no such image/i.test(err.message);
        if (!noImage || attempt > 0) throw err;
        const failure = await pull(image, step);
        if (step.signal.aborted) return { outcome: "canceled", exitCode: null, reason: "canceled" };
        if (failure !== null) {
          return { outcome: "failed", exitCode: null, reason: `image ${image} is not available: ${failure}` };
        }
      }
    }
  }

  /** Stops the container (SIGTERM, SIGKILL after the grace period) on timeout or cancel. */
  function watch(
    id: string,
    step: StepRun,
    onStop: () => void = () => {},
  ): { stopped(): Stop | null; dispose(): void } {
    let stopped: Stop | null = null;
    const stop = (outcome: Stop["outcome"], reason: string) => {
      if (stopped !== null) return;
      // A step being ended is read regardless of backpressure, so that its container can exit.
      onStop();
      // Read now, not when the step started: a lost lease leaves no grace at all.
      const graceSeconds = Math.max(0, Math.ceil(step.graceMs / 1000));
      step.onLine("system", `${reason}: sending SIGTERM, SIGKILL after ${graceSeconds} s`);
      const done = engine
        .text("POST", `/containers/${id}/stop?t=${graceSeconds}`, { long: true })
        .then(() => undefined)
        .catch((err: unknown) => warn({ err, container: id }, "could not stop the step's container"));
      stopped = { outcome, reason, done };
    };
    const timer = setTimeout(
      () => stop("timed_out", `timed out after ${seconds(step.timeoutMs)}`),
      Math.min(step.timeoutMs, MAX_TIMER_MS),
    );
    const onAbort = () => stop("canceled", "canceled");
    step.signal.addEventListener("abort", onAbort, { once: true });
    if (step.signal.aborted) onAbort();
    return {
      stopped: () => stopped,
      dispose: () => {
        clearTimeout(timer);
        step.signal.removeEventListener("abort", onAbort);
      },
    };
  }

  /**
   * Waits for the output to be fully read, but not forever: the exit status matters more. The
   * stream is given up once it has been idle for DRAIN_MS, not counting time spent waiting for
   * the reporter to take what was already read (that output is still coming).
   */
  async function drain(output: ReturnType<typeof pumpOutput>, id: string): Promise<void> {
    let closed = false;
    void output.done.then(() => {
      closed = true;
    });
    let idleSince = Date.now();
    while (!closed) {
      await Promise.race([output.done, new Promise((r) => setTimeout(r, 100))]);
      if (closed) return;
      const now = Date.now();
      if (output.reader.paused()) idleSince = now;
      else if (output.reader.lastData() > idleSince) idleSince = output.reader.lastData();
      if (now - idleSince >= DRAIN_MS) {
        warn({ container: id }, "output stream still open after the container stopped; ending it");
        return;
      }
    }
  }

  async function supervise(id: string, step: StepRun): Promise<StepEnd> {
    // Attached before the start, so not a byte of output is missed.
    const socket = await engine.attach(id);
    const output = pumpOutput(socket, step);
    try {
      try {
        await engine.text("POST", `/containers/${id}/start`);
      } catch (err) {
        // E.g. an image without /bin/sh: the step's fault, said in its log, not the worker's.
        if (!(err instanceof DockerApiError)) throw err;
        return { outcome: "failed", exitCode: null, reason: `container did not start: ${err.message}` };
      }
      const watcher = watch(id, step, () => output.reader.release());
      let exitCode: number;
      try {
        exitCode = (await engine.json("POST", `/containers/${id}/wait`, Waited, { long: true })).StatusCode;
      } finally {
        watcher.dispose();
      }
      await drain(output, id);
      const stopped = watcher.stopped();
      if (stopped !== null) {
        await stopped.done;
        return { outcome: stopped.outcome, exitCode, reason: stopped.reason };
      }
      const { State } = await engine.json("GET", `/containers/${id}/json`, Inspected);
      if (State.OOMKilled) {
        return { outcome: "failed", exitCode, reason: `out of memory (limit ${step.limits.memoryMb} MiB)` };
      }
      if (exitCode === 0) return { outcome: "succeeded", exitCode: 0 };
      return { outcome: "failed", exitCode, reason: `exit code ${exitCode}` };
    } finally {
      socket.destroy();
    }
  }

  /** The sandbox user must be able to write the workspace; the worker runs as root. */
  async function prepareWorkspace(workspace: string): Promise<void> {
    const info = await stat(workspace);
    if (info.uid === SANDBOX_USER.uid && info.gid === SANDBOX_USER.gid) return;
    try {
      await chown(workspace, SANDBOX_USER.uid, SANDBOX_USER.gid);
    } catch (err) {
      throw new Error(
        `cannot hand the workspace ${workspace} to uid ${SANDBOX_USER.uid} (${(err as Error).message}): ` +
          "the docker driver needs the worker to run as root",
        { cause: err },
      );
    }
  }

  return {
    kind: "docker",

    async check() {
      try {
        await stat(socketPath);
      } catch {
        throw new Error(
          `Docker engine socket ${socketPath} does not exist: install docker.io and start dockerd, ` +
            "or use --sandbox bwrap",
        );
      }
      let version: string | undefined;
      try {
        version = await engine.ping();
      } catch (err) {
        throw new Error(
          `Docker engine not reachable at ${socketPath} (${(err as Error).message}): start dockerd and ` +
            "make the socket accessible to the worker's user, or use --sandbox bwrap",
          { cause: err },
        );
      }
      if (version !== undefined && compareVersions(version, API_VERSION) < 0) {
        throw new Error(
          `Docker engine at ${socketPath} speaks API ${version}, older than ${API_VERSION}: ` +
            "upgrade to Docker 20.10 or later, or use --sandbox bwrap",
        );
      }
    },

    async run(step) {
      const image = step.image ?? opts.defaultImage;
      const network = step.network === "on" ? onlineNetwork : "none";
      step.onLine("system", describeConfinement(image, network, step));
      await prepareWorkspace(step.workspace);
      if (step.signal.aborted)
        return { outcome: "canceled", exitCode: null, reason: "canceled before start" };
      const created = await create(step, image, network);
      if (typeof created !== "string") return created;
      try {
        return await supervise(created, step);
      } finally {
        await remove(created);
      }
    },

    async reapOrphans(workerName) {
      const filters = JSON.stringify({ label: [`skiff.worker=${workerName}`] });
      const containers = await engine.json(
        "GET",
        `/containers/json?all=1&filters=${encodeURIComponent(filters)}`,
        Listed,
      );
      const jobs = new Set<string>();
      for (const c of containers) {
        const job = c.Labels?.["skiff.job"];
        if ((await remove(c.Id)) && job !== undefined) jobs.add(job);
      }
      return [...jobs];
    },
  };
}

function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split(".").map(Number);
  const [bMajor = 0, bMinor = 0] = b.split(".").map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}
