import { chown, stat } from "node:fs/promises";
import type { Duplex } from "node:stream";
import { Pool } from "undici";
import { z } from "zod";
import { LineSplitter } from "./lines.ts";
import type { SandboxDriver, StepEnd, StepRun } from "./types.ts";

/** Docker 20.10's API; later engines still serve it, so field meanings stay fixed. */
const API_VERSION = "1.41";
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

/** A non-2xx answer from the Docker Engine API, with its status and the engine's message. */
export class DockerApiError extends Error {
  readonly code = "docker_api";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "DockerApiError";
  }
}

const ApiMessage = z.object({ message: z.string() });
const Created = z.object({ Id: z.string(), Warnings: z.array(z.string()).nullish() });
const Waited = z.object({ StatusCode: z.number() });
const Inspected = z.object({ State: z.object({ OOMKilled: z.boolean() }) });
const Listed = z.array(z.object({ Id: z.string(), Labels: z.record(z.string(), z.string()).nullish() }));
const PullProgress = z.object({ error: z.string().optional() });

interface CallOptions {
  body?: unknown;
  /** For calls that last as long as the container does (wait, stop): no undici timeouts. */
  long?: boolean;
  signal?: AbortSignal;
}

/** Just enough of the Engine API, over its Unix socket. */
class Engine {
  private readonly pool: Pool;

  constructor(readonly socketPath: string) {
    this.pool = new Pool("http://docker", { socketPath, connections: null });
  }

  async text(method: "GET" | "POST" | "DELETE", path: string, opts: CallOptions = {}) {
    const res = await this.pool.request({
      method,
      path: `/v${API_VERSION}${path}`,
      headers: opts.body === undefined ? {} : { "content-type": "application/json" },
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: opts.signal ?? null,
      ...(opts.long
        ? { headersTimeout: 0, bodyTimeout: 0 }
        : { headersTimeout: 10_000, bodyTimeout: 30_000 }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let message = text.trim();
      try {
        message = ApiMessage.parse(JSON.parse(text)).message;
      } catch {
        // not the engine's JSON error body; keep the raw text
      }
      throw new DockerApiError(res.statusCode, `${method} ${path}: ${res.statusCode} ${message}`);
    }
    return { status: res.statusCode, text, headers: res.headers };
  }

  async json<T>(method: "GET" | "POST", path: string, schema: z.ZodType<T>, opts: CallOptions = {}) {
    const { text } = await this.text(method, path, opts);
    return schema.parse(JSON.parse(text));
  }

  /** Attaches to a created container's stdout and stderr: a raw, multiplexed stream. */
  async attach(id: string): Promise<Duplex> {
    const { socket } = await this.pool.upgrade({
      method: "POST",
      path: `/v${API_VERSION}/containers/${id}/attach?stream=1&stdout=1&stderr=1`,
      protocol: "tcp",
    });
    return socket;
  }

  async ping(): Promise<string | undefined> {
    const res = await this.pool.request({ method: "GET", path: "/_ping", headersTimeout: 5_000 });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`/_ping answered ${res.statusCode}`);
    const version = res.headers["api-version"];
    return typeof version === "string" ? version : undefined;
  }
}

/**
 * Decodes the engine's multiplexed stream: frames of an 8-byte header (stream id, 3 zero bytes,
 * big-endian payload size) and the payload, which may arrive split across any number of chunks.
 */
class Demuxer {
  private readonly header = Buffer.alloc(8);
  private headerBytes = 0;
  private stream = 0;
  private remaining = 0;

  constructor(private readonly out: (stream: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const n = Math.min(8 - this.headerBytes, chunk.length - offset);
        chunk.copy(this.header, this.headerBytes, offset, offset + n);
        this.headerBytes += n;
        offset += n;
        if (this.headerBytes < 8) return;
        this.headerBytes = 0;
        this.stream = this.header.readUInt8(0);
        this.remaining = this.header.readUInt32BE(4);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - offset);
      this.out(this.stream, chunk.subarray(offset, offset + n));
      this.remaining -= n;
      offset += n;
    }
  }
}

/** Feeds the attached stream into per-stream line splitters; resolves once it closed. */
function pumpOutput(socket: Duplex, step: StepRun): Promise<void> {
  const stdout = new LineSplitter((line) => step.onLine("stdout", line));
  const stderr = new LineSplitter((line) => step.onLine("stderr", line));
  const demuxer = new Demuxer((stream, payload) => (stream === 2 ? stderr : stdout).push(payload));
  socket.on("data", (chunk: Buffer) => demuxer.push(chunk));
  return new Promise((resolve) => {
    socket.once("close", () => {
      stdout.end();
      stderr.end();
      resolve();
    });
    // A broken stream only loses output; the exit status still comes from /wait.
    socket.once("error", () => socket.destroy());
  });
}

function describeConfinement(image: string, network: string, step: StepRun): string {
  const { memoryMb, cpus, pids } = step.limits;
  return (
    `docker: image ${image}, read-only root, tmpfs /tmp, caps dropped, no-new-privileges, ` +
    `uid ${SANDBOX_USER.uid}, network ${network}, memory ${memoryMb} MiB, cpus ${cpus}, pids ${pids}`
  );
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
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ReadonlyRootfs: true,
      // exec: builds and test runners (go test, native addons) run what they compile in /tmp; the root stays read-only.
      Tmpfs: { "/tmp": "rw,exec,nosuid,nodev,size=256m" },
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      PidsLimit: step.limits.pids,
      Memory: step.limits.memoryMb * MIB,
      MemorySwap: step.limits.memoryMb * MIB,
      NanoCpus: Math.round(step.limits.cpus * 1e9),
      NetworkMode: network,
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
  function watch(id: string, step: StepRun): { stopped(): Stop | null; dispose(): void } {
    let stopped: Stop | null = null;
    const graceSeconds = Math.max(0, Math.ceil(step.graceMs / 1000));
    const stop = (outcome: Stop["outcome"], reason: string) => {
      if (stopped !== null) return;
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

  /** Waits for the output to be fully read, but not forever: the exit status matters more. */
  async function drain(output: Promise<void>, id: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), DRAIN_MS);
    });
    const drained = await Promise.race([output.then(() => true), late]);
    clearTimeout(timer);
    if (!drained) warn({ container: id }, "output stream still open after the container stopped; ending it");
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
      const watcher = watch(id, step);
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
