import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeWith } from "@skiff/testkit";
import { Client } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDockerDriver } from "../src/sandbox/docker.ts";
import { LineSplitter } from "../src/sandbox/lines.ts";
import type { SandboxDriver, StepEnd, StepRun, StreamName } from "../src/sandbox/types.ts";
import { DOCKER_SOCKET, dockerGate, ensureTestImage } from "./support/docker-image.ts";

/** Labels everything this file creates, so leftovers are found and this file never touches others'. */
const WORKER = `test-docker-${randomUUID().slice(0, 8)}`;

const engine = new Client("http://docker", { socketPath: DOCKER_SOCKET });

async function api(method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<unknown> {
  const res = await engine.request({
    method,
    path: `/v1.41${path}`,
    headers: { "content-type": "application/json" },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode >= 400) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`);
  return text === "" ? null : JSON.parse(text);
}

/** Ids of the containers (running or not) carrying `label=value`. */
async function containersLabelled(label: string, value: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${label}=${value}`] }));
  const list = (await api("GET", `/containers/json?all=1&filters=${filters}`)) as { Id: string }[];
  return list.map((c) => c.Id);
}

interface Ran {
  end: StepEnd;
  lines: { stream: StreamName; text: string }[];
  out: string[];
  err: string[];
  workspace: string;
  jobId: string;
}

const workspaces: string[] = [];

async function freshWorkspace(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "skiff-docker-test-"));
  workspaces.push(dir);
  return dir;
}

function runner(driver: () => SandboxDriver) {
  return async (
    command: string,
    over: Partial<StepRun> & { onOutput?: (stream: StreamName, text: string) => void } = {},
  ): Promise<Ran> => {
    const { onOutput, ...step } = over;
    const lines: Ran["lines"] = [];
    const jobId = `job-${randomUUID()}`;
    const workspace = step.workspace ?? (await freshWorkspace());
    const end = await driver().run({
      jobId,
      workerName: WORKER,
      stepIndex: 0,
      command,
      env: {},
      workspace,
      network: "off",
      limits: { memoryMb: 256, cpus: 1, pids: 64 },
      signal: new AbortController().signal,
      timeoutMs: 30_000,
      graceMs: 1_000,
      onLine: (stream, text) => {
        lines.push({ stream, text });
        onOutput?.(stream, text);
      },
      ...step,
    });
    // Every run removes its container, whatever the outcome.
    expect(await containersLabelled("skiff.job", jobId)).toEqual([]);
    const of = (s: StreamName) => lines.filter((l) => l.stream === s).map((l) => l.text);
    return { end, lines, out: of("stdout"), err: of("stderr"), workspace, jobId };
  };
}

/** A TCP listener on the host's loopback that greets and counts whoever connects. */
async function greeter(): Promise<{ port: number; connections: () => number; server: Server }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.end("hello from the host\n");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { port: address.port, connections: () => connections, server };
}

/** Splits `chunks` with a LineSplitter; the driver feeds it whatever chunking the engine's stream has. */
function splitLines(chunks: Buffer[], maxBytes?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxBytes);
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return lines;
}

// Pure, so not gated on Docker; the driver's output path depends on it.
describe("LineSplitter", () => {
  it("gives the same lines wherever the chunks are cut, also inside a multi-byte character", () => {
    const text = Buffer.from("héllo wörld\r\n\nsecond line ✓\nunterminated");
    for (let a = 0; a <= text.length; a++) {
      for (let b = a; b <= text.length; b++) {
        const chunks = [text.subarray(0, a), text.subarray(a, b), text.subarray(b)];
        expect(splitLines(chunks)).toEqual(["héllo wörld", "", "second line ✓", "unterminated"]);
      }
    }
  });

  it("cuts a line longer than the cap into pieces, never inside a character", () => {
    expect(splitLines([Buffer.from("abcdefghijkl\n")], 8)).toEqual(["abcdefgh", "ijkl"]);
    expect(splitLines([Buffer.from("abcdefgh\n")], 8)).toEqual(["abcdefgh"]);
    expect(splitLines([Buffer.from("aaaaaaaé\nb")], 8)).toEqual(["aaaaaaa", "é", "b"]);
    expect(splitLines([Buffer.from("abcd"), Buffer.from("efghijklmnopqrst"), Buffer.from("u")], 8)).toEqual([
      "abcdefgh",
      "ijklmnop",
      "qrstu",
    ]);
    expect(splitLines([])).toEqual([]);
  });
});

describeWith(await dockerGate(), "docker sandbox driver", () => {
  let image = "";
  let driver: SandboxDriver | undefined;
  const getDriver = () => {
    if (driver === undefined) throw new Error("driver not set up");
    return driver;
  };
  const run = runner(getDriver);

  beforeAll(async () => {
    image = await ensureTestImage();
    driver = createDockerDriver({ socketPath: DOCKER_SOCKET, onlineNetwork: "host", defaultImage: image });
  }, 180_000);

  afterEach(async () => {
    await Promise.all(workspaces.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
    const left = await containersLabelled("skiff.worker", WORKER);
    await Promise.all(left.map((id) => api("DELETE", `/containers/${id}?force=1`)));
    expect(left, "containers left behind").toEqual([]);
  });

  afterAll(async () => {
    await engine.close();
  });

  it("check() passes against the engine, and says what to do when there is none", async () => {
    await expect(getDriver().check()).resolves.toBeUndefined();
    const missing = createDockerDriver({ socketPath: "/nonexistent/docker.sock", defaultImage: image });
    await expect(missing.check()).rejects.toThrow(
      /install docker\.io and start dockerd, or use --sandbox bwrap/,
    );
    const notASocket = join(await freshWorkspace(), "docker.sock");
    await writeFile(notASocket, "");
    const silent = createDockerDriver({ socketPath: notASocket, defaultImage: image });
    await expect(silent.check()).rejects.toThrow(/not reachable at .*start dockerd/);
  });

  it("says how the step is confined, then hands on its output line by line per stream, in order", async () => {
    const ran = await run(
      'i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; ' +
        'echo "$GREETING"; printf "no newline"',
      { env: { GREETING: "hello, world" } },
    );
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    expect(ran.lines[0]).toEqual({
      stream: "system",
      text:
        `docker: image ${image}, read-only root, tmpfs /tmp, caps dropped, no-new-privileges, uid 1000, ` +
        "network none, memory 256 MiB, cpus 1, pids 64, /tmp 256 MiB",
    });
    const numbered = (prefix: string) => Array.from({ length: 300 }, (_, i) => `${prefix} ${i + 1}`);
    expect(ran.out).toEqual([...numbered("out"), "hello, world", "no newline"]);
    expect(ran.err).toEqual(numbered("err"));
  });

  it("cuts a line longer than 64 KiB into pieces instead of holding it", async () => {
    const ran = await run("head -c 150000 /dev/zero | tr '\\0' a; echo; echo after");
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    expect(ran.out.map((line) => line.length)).toEqual([65_536, 65_536, 18_928, 5]);
    expect(ran.out.slice(0, 3).every((line) => /^a+$/.test(line))).toBe(true);
    expect(ran.out[3]).toBe("after");
  });

  it("reports a non-zero exit as a failure with its exit code", async () => {
    const ran = await run("echo bye; exit 3");
    expect(ran.end).toEqual({ outcome: "failed", exitCode: 3, reason: "exit code 3" });
    expect(ran.out).toEqual(["bye"]);
  });

  it("a network: off step cannot reach a listener on the host's 127.0.0.1; network: on can", async () => {
    const host = await greeter();
    try {
      const fetch = `nc -w 5 127.0.0.1 ${host.port} </dev/null`;
      const off = await run(fetch, { network: "off" });
      expect(off.end.outcome).toBe("failed");
      expect(off.lines[0]?.text).toContain("network none");
      expect(off.out).toEqual([]);
      expect(host.connections()).toBe(0);

      const on = await run(fetch, { network: "on" });
      expect(on.end).toEqual({ outcome: "succeeded", exitCode: 0 });
      expect(on.lines[0]?.text).toContain("network host (egress NOT isolated");
      expect(on.out).toEqual(["hello from the host"]);
      expect(host.connections()).toBe(1);
    } finally {
      await new Promise((resolve) => host.server.close(resolve));
    }
  });

  it("writes only to /workspace and /tmp; the root filesystem is read-only", async () => {
    const ran = await run(
      "for f in /x /etc/x /bin/x /workspace/out.txt /tmp/x; do " +
        'if echo data > $f 2>/dev/null; then echo "wrote $f"; else echo "denied $f"; fi; done; ' +
        "cat /tmp/x",
    );
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    expect(ran.out).toEqual([
      "denied /x",
      "denied /etc/x",
      "denied /bin/x",
      "wrote /workspace/out.txt",
      "wrote /tmp/x",
      "data",
    ]);
    const written = join(ran.workspace, "out.txt");
    expect(await readFile(written, "utf8")).toBe("data\n");
    expect((await stat(written)).uid).toBe(1000);
  });

  it("runs as uid 1000 with no capabilities and sees only its own processes", async () => {
    const ran = await run("id -u; id -g; grep CapEff /proc/self/status; ls /proc | grep -c '^[0-9][0-9]*$'");
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    const [uid, gid, capEff, processes] = ran.out;
    expect(uid).toBe("1000");
    expect(gid).toBe("1000");
    expect(capEff).toMatch(/^CapEff:\s+0000000000000000$/);
    // docker-init, the shell, ls and grep (and ls's pipe peer): a handful, not the host's hundreds.
    expect(Number(processes)).toBeGreaterThan(0);
    expect(Number(processes)).toBeLessThanOrEqual(5);
  });

  it("cannot write into a world-writable directory of the image: the root filesystem is read-only", async () => {
    const ran = await run("ls -ld /scratch; echo data > /scratch/x && echo WROTE || echo denied");
    expect(ran.out[0]).toMatch(/^drwxrwxrwt/);
    expect(ran.out[1]).toBe("denied");
  });

  it("has an empty capability bounding set and no-new-privileges", async () => {
    const ran = await run("grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status");
    expect(ran.out).toEqual(["CapBnd:\t0000000000000000", "NoNewPrivs:\t1"]);
  });

  it("runs in /workspace under docker-init, with stdin at end of file and its CPU quota", async () => {
    // docker-init as PID 1 passes signals on; a job that reads stdin gets end of file instead of
    // hanging until its timeout; half a CPU is a 50 ms quota per 100 ms period (cgroup v2 or v1).
    const ran = await run(
      "pwd; cat /proc/1/comm; if read -r line; then echo got-input; else echo stdin-closed; fi; " +
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || " +
        'echo "$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"',
      { limits: { memoryMb: 256, cpus: 0.5, pids: 64 }, timeoutMs: 10_000 },
    );
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    expect(ran.out).toEqual(["/workspace", "docker-init", "stdin-closed", "50000 100000"]);
  });

  it("labels its container for the orphan sweep and gives it a private IPC namespace", async () => {
    type Inspected = { Config: { Labels: Record<string, string> }; HostConfig: { IpcMode: string } };
    const abort = new AbortController();
    let inspected: Promise<Inspected> = Promise.reject(new Error("the step never printed `up`"));
    inspected.catch(() => {});
    const ran = await run("echo up; sleep 60", {
      signal: abort.signal,
      onOutput: (stream, text) => {
        if (stream !== "stdout" || text !== "up") return;
        inspected = (async () => {
          const [id] = await containersLabelled("skiff.worker", WORKER);
          const info = (await api("GET", `/containers/${id}/json`)) as Inspected;
          abort.abort();
          return info;
        })();
      },
    });
    expect(ran.end.outcome).toBe("canceled");
    const info = await inspected;
    expect(info.Config.Labels).toMatchObject({
      "skiff.job": ran.jobId,
      "skiff.worker": WORKER,
      "skiff.step": "0",
    });
    expect(info.HostConfig.IpcMode).toBe("private");
  });

  it("a 1 GiB write into /tmp against a 100 MiB disk limit fails the step", async () => {
    const ran = await run("dd if=/dev/zero of=/tmp/big bs=1M count=1024 2>&1", {
      limits: { memoryMb: 512, cpus: 1, pids: 64, diskMb: 100 },
    });
    expect(ran.end.outcome).toBe("failed");
    expect(ran.out.join("\n")).toMatch(/No space left on device/);
  });

  it("stops a fork loop at the pids limit: the step fails instead of hanging", async () => {
    const ran = await run("while true; do sleep 60 & done", { limits: { memoryMb: 256, cpus: 1, pids: 32 } });
    expect(ran.end.outcome).toBe("failed");
    expect(ran.err.join("\n")).toMatch(/can't fork|Resource temporarily unavailable/);
  });

  it("reports a step that exceeds its memory limit as out of memory", async () => {
    const ran = await run("head -c 300m /dev/zero | tail > /dev/null", {
      limits: { memoryMb: 64, cpus: 1, pids: 64 },
    });
    expect(ran.end).toEqual({ outcome: "failed", exitCode: 137, reason: "out of memory (limit 64 MiB)" });
  });

  it("kills a step that outlives its timeout and reports it timed out", async () => {
    const started = Date.now();
    const ran = await run("sleep 600", { timeoutMs: 1_500, graceMs: 1_000 });
    expect(ran.end).toMatchObject({ outcome: "timed_out", reason: "timed out after 1.5 s" });
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(ran.lines.at(-1)).toEqual({
      stream: "system",
      text: "timed out after 1.5 s: sending SIGTERM, SIGKILL after 1 s",
    });
  });

  it("cancels a running step when its signal is aborted", async () => {
    const abort = new AbortController();
    const started = Date.now();
    const ran = await run("echo started; sleep 600", {
      signal: abort.signal,
      onOutput: (stream, text) => {
        if (stream === "stdout" && text === "started") abort.abort();
      },
    });
    expect(ran.end).toMatchObject({ outcome: "canceled", reason: "canceled" });
    expect(ran.out).toEqual(["started"]);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("fails a step whose image is not there and cannot be pulled, naming the image", async () => {
    const missing = `skiff-test-missing-${randomUUID().slice(0, 8)}:latest`;
    const ran = await run("true", { image: missing });
    expect(ran.end).toMatchObject({ outcome: "failed", exitCode: null });
    expect(ran.end.outcome === "failed" && ran.end.reason).toMatch(`image ${missing} is not available`);
  });

  it("reapOrphans removes containers a previous life of this worker left behind, and only those", async () => {
    const jobId = `job-${randomUUID()}`;
    const create = (worker: string) =>
      api("POST", "/containers/create", {
        Image: image,
        Cmd: ["sleep", "600"],
        Labels: { "skiff.job": jobId, "skiff.worker": worker, "skiff.step": "0" },
        HostConfig: { NetworkMode: "none" },
      }) as Promise<{ Id: string }>;
    const orphan = await create(WORKER);
    await api("POST", `/containers/${orphan.Id}/start`);
    const otherWorker = `${WORKER}-other`;
    const other = await create(otherWorker);
    try {
      expect(await getDriver().reapOrphans(WORKER)).toEqual([jobId]);
      expect(await containersLabelled("skiff.worker", WORKER)).toEqual([]);
      expect(await containersLabelled("skiff.worker", otherWorker)).toEqual([other.Id]);
      expect(await getDriver().reapOrphans(WORKER)).toEqual([]);
    } finally {
      await api("DELETE", `/containers/${other.Id}?force=1`);
    }
  });
});
