import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createWorkspace } from "../src/workspace.ts";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

const gate = bwrapGate();
const rootGate =
  gate.available && process.getuid?.() !== 0 ? { available: false, missing: "needs root" } : gate;

describeWith(rootGate, "a workspace the sandbox cannot reach [bwrap, pglite]", () => {
  // A top-level directory closed to others: the worker does not open it up by itself.
  const locked = `/skiff-locked-${process.pid}`;
  let stack: Stack;
  beforeAll(async () => {
    mkdirSync(locked, { mode: 0o700 });
    stack = await startStack({ queue: "locked", workRoot: `${locked}/work` });
  });
  afterAll(async () => {
    await stack?.close();
    rmSync(locked, { recursive: true, force: true });
  });

  it("fails the job at once with what to do, instead of holding its slot", async () => {
    const job = await stack.submit({ name: "nowhere", steps: [{ name: "s", run: "true" }] });
    const done = await stack.final(job.id, 15_000);
    expect(done.state).toBe("failed");
    expect(done.error).toContain(`cannot prepare the job's workspace`);
    expect(done.error).toContain(`chmod o+x ${locked}`);
  });
});

describeWith(rootGate, "a disk limit never fails open [bwrap, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ queue: "disk-cap", defaultDiskMb: 64, maxDiskMb: 128 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("a job asking for more disk than the worker allows fails before anything runs", async () => {
    const job = await stack.submit({
      name: "greedy",
      resources: { diskMb: 16_777_216 },
      steps: [{ name: "s", run: "echo ran" }],
    });
    const done = await stack.final(job.id, 30_000);
    expect(done.state).toBe("failed");
    expect(done.error).toContain(
      "resources.diskMb 16777216 is more than this worker allows (128 MiB, worker.maxDiskMb)",
    );
    expect((await stack.logs(job.id)).map((l) => l.text)).not.toContain("ran");
    const fits = await stack.submit({
      name: "fits",
      resources: { diskMb: 128 },
      steps: [{ name: "s", run: "df -m /workspace | tail -1" }],
    });
    expect(await stack.final(fits.id, 30_000)).toMatchObject({ state: "succeeded" });
  });

  it("jobs are not promised more disk than the host has: limits are sparse images, so their sum is checked", async () => {
    // A 200 MiB filesystem of the test's own stands for a small host disk.
    const base = mkdtempSync(join(tmpdir(), "skiff-small-disk-"));
    const image = join(base, "disk.img");
    const root = join(base, "mnt");
    mkdirSync(root);
    execFileSync("truncate", ["-s", "200M", image]);
    execFileSync("mkfs.ext4", ["-q", "-F", "-m", "0", image]);
    execFileSync("mount", ["-o", "loop", image, root]);
    try {
      const a = await createWorkspace(root, "job_a-", 128);
      await expect(createWorkspace(root, "job_b-", 128)).rejects.toThrow(
        /not enough free disk under .* for a 128 MiB workspace: \d+ MiB free, 128 MiB of it promised to the jobs running now/,
      );
      // Two that fit side by side are both made; once a job ends its promise is released.
      const small = await createWorkspace(root, "job_c-", 32);
      await a.destroy();
      const b = await createWorkspace(root, "job_b-", 128);
      await b.destroy();
      await small.destroy();
      expect(readdirSync(root).filter((f) => f !== "lost+found")).toEqual([]);
    } finally {
      execFileSync("umount", [root]);
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("when making the filesystem fails, the job gets an error naming its limit, not a workspace without one", async () => {
    const root = mkdtempSync(join(tmpdir(), "skiff-mkfs-fails-"));
    // A mkfs.ext4 first on the PATH that answers -V (so the worker thinks it can) and fails the real run.
    const bin = mkdtempSync(join(tmpdir(), "skiff-fake-bin-"));
    writeFileSync(
      join(bin, "mkfs.ext4"),
      '#!/bin/sh\n[ "$1" = -V ] && exit 0\necho "mkfs.ext4: simulated failure" >&2\nexit 1\n',
      {
        mode: 0o755,
      },
    );
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      await expect(createWorkspace(root, "job_mkfs-", 64)).rejects.toThrow(
        /^cannot set up its disk limit of 64 MiB: .*simulated failure/s,
      );
      expect(readdirSync(root)).toEqual([]);
    } finally {
      process.env.PATH = path;
    }
    try {
      // Nothing of the failed one stays promised: the same size fits again.
      const ok = await createWorkspace(root, "job_mkfs-", 64);
      expect(ok.limited).toBe(true);
      await ok.destroy();
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it("a limited workspace that cannot be made is an error, not a workspace without a limit", async () => {
    const root = mkdtempSync(join(tmpdir(), "skiff-disk-open-"));
    try {
      // Refused for want of free space before the image is even tried, or by the image itself.
      await expect(createWorkspace(root, "job_huge-", 16_777_216)).rejects.toThrow(
        /cannot set up its disk limit of 16777216 MiB|not enough free disk under .* for a 16777216 MiB workspace/,
      );
      expect(readdirSync(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describeWith(rootGate, "a worker short of disk leaves jobs in the queue [bwrap, pglite]", () => {
  // 200 MiB of disk for a worker with three slots and 128 MiB jobs: room for one at a time.
  const base = mkdtempSync(join(tmpdir(), "skiff-short-disk-"));
  const mnt = join(base, "mnt");
  let stack: Stack;
  beforeAll(async () => {
    mkdirSync(mnt);
    execFileSync("truncate", ["-s", "200M", join(base, "disk.img")]);
    execFileSync("mkfs.ext4", ["-q", "-F", "-m", "0", join(base, "disk.img")]);
    execFileSync("mount", ["-o", "loop", join(base, "disk.img"), mnt]);
    stack = await startStack({
      queue: "short-disk",
      workRoot: join(mnt, "work"),
      slots: 3,
      defaultDiskMb: 128,
    });
  });
  afterAll(async () => {
    await stack?.close();
    execFileSync("umount", [mnt]);
    rmSync(base, { recursive: true, force: true });
  });

  it("claims only as many jobs as their disk limits fit: all succeed, one after another, none fails for want of disk", async () => {
    const jobs = [];
    for (let i = 0; i < 3; i++)
      jobs.push(await stack.submit({ name: `fits-${i}`, steps: [{ name: "s", run: "sleep 1" }] }));
    const done = [];
    for (const j of jobs) done.push(await stack.final(j.id, 60_000));
    expect(done.map((d) => d.state)).toEqual(["succeeded", "succeeded", "succeeded"]);
    // No two ran at once: each started after the one before had finished.
    const spans = done
      .map((d) => [Date.parse(d.startedAt), Date.parse(d.finishedAt)] as const)
      .sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++)
      expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] ?? 0);
  });
});
