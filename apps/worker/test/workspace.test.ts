import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
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

  it("a limited workspace that cannot be made is an error, not a workspace without a limit", async () => {
    const root = mkdtempSync(join(tmpdir(), "skiff-disk-open-"));
    try {
      await expect(createWorkspace(root, "job_huge-", 16_777_216)).rejects.toThrow(
        /cannot set up its disk limit of 16777216 MiB/,
      );
      expect(readdirSync(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
