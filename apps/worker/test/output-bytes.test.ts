import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

describeWith(bwrapGate(), "any byte a job prints [bwrap, pglite]", () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ queue: "bytes", name: "bytes-worker" });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("NUL and invalid UTF-8 in a step's output are stored as U+FFFD, and the job still succeeds promptly", async () => {
    const started = Date.now();
    const job = await stack.submit({
      name: "odd-bytes",
      steps: [
        {
          name: "print",
          run: 'printf "x\\000y\\n"; printf "\\377\\376bad\\n"; printf "\\355\\240\\200 surrogate\\n"; echo after',
        },
      ],
    });
    const done = await stack.final(job.id, 15_000);
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0 });
    expect(Date.now() - started).toBeLessThan(10_000);
    const out = (await stack.logs(job.id)).filter((l) => l.stream === "stdout").map((l) => l.text);
    expect(out).toEqual(["x\uFFFDy", "\uFFFD\uFFFDbad", "\uFFFD\uFFFD\uFFFD surrogate", "after"]);
  });
});
