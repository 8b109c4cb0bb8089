import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createBwrapDriver } from "../src/sandbox/bwrap.ts";
import { bwrapGate, listener, runStep } from "./support.ts";

const driver = createBwrapDriver();
const connect = (port: number) =>
  `node -e "require('net').connect(${port},'127.0.0.1').on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log('refused:'+e.code);process.exit(3)})"`;

describeWith(bwrapGate(), "bwrap sandbox", () => {
  let server: Awaited<ReturnType<typeof listener>>;
  beforeAll(async () => {
    server = await listener();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("a network: off step cannot reach a listener on the host's 127.0.0.1 nor resolve names; neither can network: on", async () => {
    const before = server.connections();
    const off = await runStep(driver, connect(server.port), { network: "off" });
    expect(off.end.outcome).toBe("failed");
    expect(off.out).toMatch(/refused:(ECONNREFUSED|ENETUNREACH)/);
    const dns = await runStep(
      driver,
      `node -e "require('dns').lookup('example.com',(e)=>{console.log(e?e.code:'resolved');process.exit(e?3:0)})"`,
    );
    expect(dns.end.outcome).toBe("failed");
    expect(dns.out).not.toContain("resolved");
    expect(server.connections()).toBe(before);
    // network: on gets egress of its own, never the host's loopback (hostile-bwrap.test.ts has more).
    const on = await runStep(driver, connect(server.port), { network: "on" });
    expect(on.end.outcome).toBe("failed");
    expect(on.out).toMatch(/refused:/);
    expect(server.connections()).toBe(before);
  });

  it("writes only to /workspace and /tmp, runs as uid 1000 with no capabilities, and sees only its own processes", async () => {
    const ws = mkdtempSync(join(tmpdir(), "skiff-ws-"));
    try {
      const r = await runStep(
        driver,
        [
          "touch /usr/x 2>/dev/null && echo wrote-usr",
          "touch /etc/x 2>/dev/null && echo wrote-etc",
          "touch / 2>/dev/null; mkdir /newdir 2>/dev/null && echo wrote-root",
          "touch /workspace/ok /tmp/ok && echo wrote-workspace-and-tmp",
          'echo "uid=$(id -u)"',
          "grep CapEff /proc/self/status",
          'echo "procs=$(ls /proc | grep -c "^[0-9]")"',
          "echo \"visible=$(cat /proc/[0-9]*/cmdline | tr '\\0' ' ' | grep -c -e vites[t] -e skiff-worke[r])\"",
        ].join("; "),
        { workspace: ws },
      );
      expect(r.end.outcome).toBe("succeeded");
      expect(r.out).not.toMatch(/wrote-(usr|etc|root)/);
      expect(r.out).toContain("wrote-workspace-and-tmp");
      expect(r.out).toContain("uid=1000");
      expect(r.out).toMatch(/CapEff:\s+0000000000000000/);
      const procs = Number(/procs=(\d+)/.exec(r.out)?.[1]);
      expect(procs).toBeGreaterThan(0);
      expect(procs).toBeLessThanOrEqual(8);
      // The worker (this test process, vitest) is invisible from inside.
      expect(r.out).toContain("visible=0");
      expect(existsSync(join(ws, "ok"))).toBe(true);
      expect(r.lines[0]).toMatchObject({ stream: "system" });
      expect(r.lines[0]?.text).toMatch(/bwrap.*no network.*limits: memory 256 MiB/);
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it("sees the host's passwd, group, hosts and linker cache, read-only", async () => {
    const files = ["/etc/passwd", "/etc/group", "/etc/hosts", "/etc/ld.so.cache"];
    const ran = await runStep(
      driver,
      `${files.map((f) => `cksum < ${f}`).join("; ")}; (echo x >> /etc/hosts) 2>/dev/null && echo WROTE || echo read-only`,
    );
    const lines = ran.out.split("\n");
    expect(lines.at(-1)).toBe("read-only");
    expect(lines.slice(0, files.length)).toEqual(
      files.map((f) => spawnSync("cksum", { input: readFileSync(f), encoding: "utf8" }).stdout.trim()),
    );
  });

  it("with a rootfs configured, the step's root is that tree and none of the host's", async () => {
    const busybox = "/bin/busybox";
    if (!existsSync(busybox))
      throw new Error("this test needs busybox at /bin/busybox: apt-get install busybox-static");
    const rootfs = mkdtempSync(join(tmpdir(), "skiff-rootfs-"));
    try {
      // bwrap runs as the sandbox's unprivileged host uid: the tree must be readable by it.
      chmodSync(rootfs, 0o755);
      for (const dir of ["bin", "proc", "dev", "tmp", "workspace"]) mkdirSync(join(rootfs, dir));
      copyFileSync(busybox, join(rootfs, "bin", "busybox"));
      for (const tool of ["sh", "ls", "echo", "cat"]) symlinkSync("busybox", join(rootfs, "bin", tool));
      writeFileSync(join(rootfs, "marker"), "the operator's rootfs\n");
      const ran = await runStep(
        createBwrapDriver({ rootfs }),
        "cat /marker; ls /; ls /usr 2>/dev/null && echo HOST-USR || echo no-usr",
      );
      expect(ran.end.outcome).toBe("succeeded");
      const [marker, ...rest] = ran.out.split("\n");
      expect(marker).toBe("the operator's rootfs");
      expect(rest.at(-1)).toBe("no-usr");
      expect(rest.slice(0, -1).join(" ").split(/\s+/).sort()).toEqual(
        ["bin", "dev", "marker", "proc", "tmp", "workspace"].sort(),
      );
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  });

  it("names itself skiff-sandbox and gives the step HOME, TMPDIR and PATH of its own", async () => {
    const ran = await runStep(driver, 'hostname; echo "$HOME|$TMPDIR|$PATH"');
    expect(ran.out.split("\n")).toEqual([
      "skiff-sandbox",
      "/workspace|/tmp|/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    ]);
  });

  it("marks stdout and stderr lines and keeps their order per stream", async () => {
    const r = await runStep(driver, "echo one; echo two >&2; printf 'three\\nfour'; exit 7");
    expect(r.end).toMatchObject({ outcome: "failed", exitCode: 7, reason: "exit code 7" });
    expect(r.lines.filter((l) => l.stream === "stdout").map((l) => l.text)).toEqual(["one", "three", "four"]);
    expect(r.lines.filter((l) => l.stream === "stderr").map((l) => l.text)).toEqual(["two"]);
  });

  it("a fork bomb is stopped by the PID limit and the step fails saying so", async () => {
    const r = await runStep(
      driver,
      "set -e; i=0; while [ $i -lt 500 ]; do sleep 30 & i=$((i+1)); done; wait",
      {
        limits: { pids: 32 },
        timeoutMs: 20_000,
      },
    );
    expect(r.end.outcome).toBe("failed");
    expect(r.end).toMatchObject({ reason: "hit the process limit (32 pids)" });
  });

  it("a memory hog is killed and reported as out of memory", async () => {
    const r = await runStep(driver, `node -e "const a=[];for(;;)a.push(Buffer.alloc(1<<20,1))"`, {
      limits: { memoryMb: 96 },
      timeoutMs: 30_000,
    });
    expect(r.end).toMatchObject({ outcome: "failed", reason: "out of memory (limit 96 MiB)" });
  });

  it("a sleep 600 step is killed at its timeout; cancel ends a running step within the grace period", async () => {
    const t0 = Date.now();
    const slow = await runStep(driver, "sleep 600", { timeoutMs: 1_000, graceMs: 1_000 });
    expect(slow.end.outcome).toBe("timed_out");
    const canceled = await runStep(driver, "trap '' TERM; sleep 600", { abortAfterMs: 500, graceMs: 1_000 });
    expect(canceled.end.outcome).toBe("canceled");
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it("cancel gives the step its grace period: its SIGTERM handler runs and can clean up before the end", async () => {
    const r = await runStep(
      driver,
      "trap 'echo got TERM, cleaning up; sleep 0.3; echo cleaned; exit 0' TERM; echo up; while :; do sleep 0.1; done",
      { abortAfterMs: 1_000, graceMs: 10_000 },
    );
    expect(r.end.outcome).toBe("canceled");
    // Every process of the step gets SIGTERM (the shell also reports its `sleep` child terminated).
    const out = r.out.split("\n");
    expect(out).toEqual(expect.arrayContaining(["up", "got TERM, cleaning up", "cleaned"]));
    expect(out.at(-1)).toBe("cleaned");
  });

  it("leaves no cgroup behind", async () => {
    await runStep(driver, "true", { jobId: "job_cgcheck", workerName: "cg-worker" });
    for (const base of ["/sys/fs/cgroup/pids/skiff", "/sys/fs/cgroup/memory/skiff", "/sys/fs/cgroup/skiff"]) {
      if (!existsSync(base)) continue;
      expect(readdirSync(base).filter((d) => d.startsWith("cg-worker--"))).toEqual([]);
    }
    expect(readFileSync("/proc/self/status", "utf8")).toContain("Name:");
  });
});
