import { mkdirSync, rmSync } from "node:fs";
import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
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
