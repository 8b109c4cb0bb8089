import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createBwrapDriver } from "../src/sandbox/bwrap.ts";
import { slirpAvailable } from "../src/sandbox/egress.ts";
import { createWorkspace } from "../src/workspace.ts";
import {
  canMakeNamespaces,
  connectCommand,
  type Internet,
  otherHostAddresses,
  startInternet,
} from "./internet.ts";
import { bwrapGate, listener, runStep } from "./support.ts";

/**
 * A hostile job against each wall of the bwrap sandbox (docs/security.md lists them). Each test
 * plays the attacker and fails when its wall is taken away.
 */
const gate = bwrapGate();
const netGate =
  gate.available && !canMakeNamespaces()
    ? { available: false, missing: "making a network namespace needs root and iproute2" }
    : gate.available && !slirpAvailable()
      ? { available: false, missing: "slirp4netns is missing: apt-get install slirp4netns" }
      : gate;

const driver = createBwrapDriver();

describeWith(netGate, "hostile job: egress of a network: on step [bwrap]", () => {
  let internet: Internet;
  let host: Awaited<ReturnType<typeof listener>>;
  beforeAll(async () => {
    internet = await startInternet();
    host = await listener("0.0.0.0");
  });
  afterAll(async () => {
    await host?.close();
    await internet?.close();
  });

  it("reaches a server on the stand-in internet, and says which egress rule applied", async () => {
    const ran = await runStep(driver, connectCommand(internet.host, internet.port), { network: "on" });
    expect(ran.out).toContain("connected hi from outside");
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    const described = ran.lines.find((l) => l.stream === "system")?.text ?? "";
    expect(described).toContain("egress via user-mode networking (slirp4netns)");
    expect(described).toContain("no route to the host");
  });

  it("has its network before its first instruction, and slirp's resolver, not the host's", async () => {
    // bwrap holds the step until its network is configured: the interface is there at once.
    const ran = await runStep(driver, "cut -d: -f1 /proc/net/dev; cat /etc/resolv.conf", { network: "on" });
    expect(ran.end).toEqual({ outcome: "succeeded", exitCode: 0 });
    const lines = ran.out.split("\n").map((l) => l.trim());
    expect(lines).toContain("tap0");
    expect(lines).toContain("nameserver 10.0.2.3");
    expect(lines.filter((l) => l.startsWith("nameserver"))).toEqual(["nameserver 10.0.2.3"]);
  });

  it("cannot reach a listener on the host's 127.0.0.1, on slirp's gateway, nor on any other host address", async () => {
    const before = host.connections();
    const targets = ["127.0.0.1", "10.0.2.2", internet.hostSide, ...otherHostAddresses()];
    for (const target of new Set(targets)) {
      const ran = await runStep(driver, connectCommand(target, host.port), { network: "on" });
      expect({ target, out: ran.out }).toMatchObject({ out: expect.stringMatching(/^refused:/) });
      expect(ran.end.outcome).toBe("failed");
    }
    expect(host.connections()).toBe(before);
  });

  it("reaches a host address the operator allowed, and only that one", async () => {
    const allowing = createBwrapDriver({ egressAllow: [`${internet.hostSide}/32`] });
    const before = host.connections();
    const allowed = await runStep(allowing, connectCommand(internet.hostSide, host.port), { network: "on" });
    expect(allowed.out).toContain("connected hi");
    const loopback = await runStep(allowing, connectCommand("127.0.0.1", host.port), { network: "on" });
    expect(loopback.out).toMatch(/^refused:/);
    expect(host.connections()).toBe(before + 1);
  });
});

describeWith(gate, "hostile job: identity, system calls and environment [bwrap]", () => {
  it("the sandbox's user is an unprivileged host uid: what it writes is owned by that uid, not root", async () => {
    const workspace = mkdtempSync(join(tmpdir(), "skiff-ws-"));
    try {
      const ran = await runStep(driver, "id -u; touch /workspace/mine", { workspace });
      expect(ran.out).toBe("1000");
      const owner = statSync(join(workspace, "mine")).uid;
      expect(owner).not.toBe(0);
      expect(owner).toBe(process.getuid?.() === 0 ? 64_000 : process.getuid?.());
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  });

  it("cannot make a user namespace (unshare -Ur), with either of the two walls alone", async () => {
    // With a wall taken away, the rest of the command line still holds (HOME is set after the filter).
    const attempt = 'unshare -Ur id -u && echo ESCAPED || echo refused; echo "home=$HOME"';
    // The worker's sandbox, then --disable-userns without the filter, then the filter without it.
    for (const d of [
      driver,
      createBwrapDriver({ seccomp: false }),
      createBwrapDriver({ disableUserns: false }),
    ]) {
      const ran = await runStep(d, attempt);
      expect(ran.out).toContain("refused");
      expect(ran.out).not.toContain("ESCAPED");
      expect(ran.out).toContain("home=/workspace");
    }
    // The control: with both walls taken away it works, so each wall above is what stopped it.
    const open = await runStep(createBwrapDriver({ seccomp: false, disableUserns: false }), attempt);
    expect(open.out).toContain("ESCAPED");
  });

  it("a system call the seccomp filter blocks (keyctl) fails with EPERM", async () => {
    // keyctl(KEYCTL_JOIN_SESSION_KEYRING) succeeds for any unconfined process.
    const nr = process.arch === "arm64" ? 219 : 250;
    const ran = await runStep(
      driver,
      `perl -e 'my $r = syscall(${nr}, 1, 0); print $r < 0 ? "errno=".($!+0) : "allowed", "\\n"'`,
    );
    expect(ran.out).toBe("errno=1");
    const described = ran.lines.find((l) => l.stream === "system")?.text ?? "";
    expect(described).toContain("seccomp filter");
  });

  it("cannot open a vsock socket (a way to the hypervisor no network namespace cuts), even with network: off", async () => {
    const ran = await runStep(
      driver,
      `perl -e 'use Socket; my $ok = socket(my $s, 40, SOCK_STREAM, 0); print $ok ? "allowed" : "errno=".($!+0), "\\n"; socket(my $u, AF_UNIX, SOCK_STREAM, 0) or die; print "unix ok\\n"'`,
    );
    expect(ran.out.split("\n")).toEqual(["errno=1", "unix ok"]);
  });

  it("runs with no capabilities even as uid 0 inside a sandbox that bwrap set up as root", async () => {
    // A privileged bwrap keeps uid 0's capabilities unless told to drop them; the worker never runs
    // it so (the sandbox's user maps to an unprivileged host uid), which is why this test asks for it.
    const asRoot = createBwrapDriver({ uid: 0, hostUid: 0 });
    const ran = await runStep(asRoot, "grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status");
    expect(ran.out.split("\n")).toEqual([
      "CapPrm:\t0000000000000000",
      "CapEff:\t0000000000000000",
      "CapBnd:\t0000000000000000",
    ]);
  });

  it("finds neither its environment on a command line nor the host's paths in bwrap's environment", async () => {
    const ran = await runStep(
      driver,
      "tr '\\0' '\\n' < /proc/1/cmdline; echo ---; tr '\\0' '\\n' < /proc/1/environ",
      { env: { API_KEY: "hidden-value-123" } },
    );
    expect(ran.end.outcome).toBe("succeeded");
    const [cmdline, environ] = ran.out.split("---");
    expect(cmdline).not.toContain("hidden-value-123");
    expect(cmdline).not.toContain("--setenv");
    expect(environ).not.toMatch(/SKIFF_|PWD=\/[a-z]/);
  });

  it("/dev is read-only and /dev/shm holds 64 MiB, not the host's memory", async () => {
    const ran = await runStep(
      driver,
      "mkdir /dev/x 2>/dev/null && echo MADE || echo no-mkdir; " +
        "dd if=/dev/zero of=/dev/shm/f bs=1M count=300 2>&1; ls -s /dev/shm/f",
      { limits: { memoryMb: 1024 } },
    );
    expect(ran.out).toContain("no-mkdir");
    expect(ran.out).toMatch(/No space left on device/);
    const kib = Number(ran.out.trim().split("\n").at(-1)?.trim().split(/\s+/)[0]);
    expect(kib).toBeLessThanOrEqual(64 * 1024);
    // Full at 64 MiB: not at a few bytes either.
    expect(kib).toBeGreaterThan(60 * 1024);
  });

  it("sees only the variables the job declared, not the worker's", async () => {
    process.env.SKIFF_TEST_WORKER_ONLY = "from-the-worker";
    try {
      const ran = await runStep(driver, "env | cut -d= -f1 | sort", { env: { DECLARED: "yes" } });
      const names = ran.out.split("\n").filter((n) => !["PWD", "SHLVL", "_", "OLDPWD"].includes(n));
      expect(names).toEqual(["DECLARED", "HOME", "PATH", "TMPDIR"]);
    } finally {
      delete process.env.SKIFF_TEST_WORKER_ONLY;
    }
  });
});

const rootGate =
  gate.available && process.getuid?.() !== 0 ? { available: false, missing: "disk limits need root" } : gate;

describeWith(rootGate, "hostile job: disk limits [bwrap]", () => {
  it("a 1 GiB write against a 100 MiB limit fails the step, in /workspace and in /tmp, and the host keeps its disk", async () => {
    const root = mkdtempSync(join(tmpdir(), "skiff-disk-"));
    const ws = await createWorkspace(root, "job_disk-", 100);
    try {
      expect(ws.limited).toBe(true);
      const limits = { diskMb: 100 };
      const work = await runStep(driver, "dd if=/dev/zero of=/workspace/big bs=1M count=1024 2>&1", {
        workspace: ws.path,
        limits,
      });
      expect(work.end.outcome).toBe("failed");
      expect(work.out).toMatch(/No space left on device/);
      expect(ws.full()).toBe(true);
      // The image behind the workspace never grows past its size.
      const image = readdirSync(root).find((f) => f.endsWith(".img")) as string;
      expect(statSync(join(root, image)).blocks * 512).toBeLessThanOrEqual(100 * 1024 * 1024);

      // /tmp is sized to the same limit: 100 MiB, not 100 KiB nor the host's memory.
      const size = await runStep(driver, "df -k /tmp | tail -1", { workspace: ws.path, limits });
      expect(size.out.trim().split(/\s+/)[1]).toBe(String(100 * 1024));
      const tmp = await runStep(driver, "dd if=/dev/zero of=/tmp/big bs=1M count=1024 2>&1", {
        workspace: ws.path,
        limits,
      });
      expect(tmp.end.outcome).toBe("failed");
      expect(tmp.out).toMatch(/No space left on device/);
      await ws.destroy();
      expect(readdirSync(root)).toEqual([]);
    } finally {
      await ws.destroy();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
