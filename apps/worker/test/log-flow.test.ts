import { createTestDatabase, describeWith, pgGate, type TestDatabase, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate, switchableRelay } from "./support.ts";

const MIB = 1024 * 1024;
/** Numbered lines of 100 bytes (with the newline): `seq` writes them as fast as the pipe takes them. */
const LINE_PAD = "x".repeat(90);
const writer = (lines: number) => `seq -f '%09.0f ${LINE_PAD}' 1 ${lines}`;
const numberOf = (text: string) => Number(text.slice(0, 9));

async function allLines(stack: Stack, jobId: string) {
  const out: { seq: number; stream: string; text: string; step: number | null }[] = [];
  for (let after = 0; ; ) {
    const page = await stack.store.listLogs(jobId, after, 50_000);
    if (page.length === 0) return out;
    out.push(...page);
    after = page[page.length - 1]?.seq ?? after;
  }
}

const bothGates = async () => {
  const [bwrap, pg] = [bwrapGate(), await pgGate()];
  return bwrap.available ? pg : bwrap;
};

describeWith(await bothGates(), "log flow of a fast writer [bwrap, pg]", () => {
  let stack: Stack;
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
    // Caps far above the output: nothing may be left out, however fast the step writes.
    stack = await startStack(
      { queue: "flow", name: "flow-worker", logCapBytes: 128 * MIB, logBatchMs: 100 },
      { logCapBytes: 128 * MIB },
      database.url,
    );
  });
  afterAll(async () => {
    await stack?.close();
    await database?.drop();
  });

  it("50 MB written as fast as possible: every numbered line stored exactly once, in order, no note of a drop", {
    timeout: 300_000,
  }, async () => {
    const total = 500_000; // 50 MB
    const job = await stack.submit({ name: "fast-writer", steps: [{ name: "flood", run: writer(total) }] });
    const done = await stack.final(job.id, 240_000);
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0, logTruncated: false });
    const lines = await allLines(stack, job.id);
    const out = lines.filter((l) => l.stream === "stdout");
    expect(out.length).toBe(total);
    for (let i = 0; i < out.length; i++) {
      if (numberOf(out[i]?.text ?? "") !== i + 1) expect(out[i]?.text, `line ${i + 1}`).toBe(`${i + 1}`);
    }
    const system = lines.filter((l) => l.stream === "system").map((l) => l.text);
    expect(
      system.filter((t) => /lines dropped|log truncated/.test(t)),
      system.join("\n"),
    ).toEqual([]);
    expect(system.at(-1)).toMatch(/^--- flood succeeded in /);
    const seqs = lines.map((l) => l.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});

describeWith(bwrapGate(), "log cap of a fast writer [bwrap, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      { queue: "capped", name: "capped-worker", logCapBytes: 2 * MIB, logBatchMs: 100 },
      { logCapBytes: 2 * MIB },
    );
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("over the cap: the head, one marker saying how much was left out, the tail up to the last line, the result line, and the flag", {
    timeout: 300_000,
  }, async () => {
    const total = 500_000;
    const job = await stack.submit({
      name: "capped-writer",
      steps: [
        { name: "flood", run: writer(total) },
        { name: "after", run: "echo second step runs" },
      ],
    });
    const done = await stack.final(job.id, 240_000);
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0, logTruncated: true });
    const lines = await allLines(stack, job.id);
    const stepOne = lines.filter((l) => l.step === 0);
    const markerAt = stepOne.findIndex((l) => l.stream === "system" && l.text.startsWith("[log truncated: "));
    expect(markerAt, "one truncation marker").toBeGreaterThan(0);
    expect(stepOne.filter((l) => l.text.startsWith("[log truncated")).length).toBe(1);
    const head = stepOne.slice(0, markerAt).filter((l) => l.stream === "stdout");
    const tail = stepOne.slice(markerAt + 1).filter((l) => l.stream === "stdout");
    head.forEach((l, i) => {
      if (numberOf(l.text) !== i + 1) expect(l.text).toBe(`head line ${i + 1}`);
    });
    tail.forEach((l, i) => {
      const want = total - tail.length + i + 1;
      if (numberOf(l.text) !== want) expect(l.text).toBe(`tail line ${want}`);
    });
    expect(head.length).toBeGreaterThan(10_000); // about three quarters of 2 MiB
    expect(tail.length).toBeGreaterThan(1_000);
    const marker = stepOne[markerAt]?.text ?? "";
    const omitted = Number(/^\[log truncated: (\d+) lines/.exec(marker)?.[1]);
    expect(head.length + omitted + tail.length, marker).toBe(total);
    expect(marker).toContain(`the last ${tail.length} lines of the step follow`);
    // Skiff's own lines arrive after the tail: the step's result, then the next step in full.
    const stepOneSystem = stepOne.filter((l) => l.stream === "system").map((l) => l.text);
    expect(stepOneSystem.at(-1)).toMatch(/^--- flood succeeded in /);
    const stepTwo = lines.filter((l) => l.step === 1).map((l) => l.text);
    expect(stepTwo.at(-1)).toMatch(/^--- after succeeded in /);
    const stored = lines
      .filter((l) => l.stream !== "system")
      .reduce((n, l) => n + Buffer.byteLength(l.text), 0);
    expect(stored).toBeLessThanOrEqual(2 * MIB);
  });
});

describeWith(bwrapGate(), "log cap of empty lines [bwrap, pglite]", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      { queue: "empty", name: "empty-worker", logCapBytes: 64 * 1024, logBatchMs: 100 },
      { logCapBytes: 64 * 1024 },
    );
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("a flood of empty lines is capped like any output: each counts its newline", {
    timeout: 120_000,
  }, async () => {
    const job = await stack.submit({
      name: "empty",
      // Three times the cap in newlines alone: enough to cross it, small enough that storing the
      // kept part stays quick on a loaded machine (a million lines once took the embedded store
      // past 90 s under CPU contention).
      steps: [{ name: "flood", run: "yes '' | head -n 200000" }],
    });
    const done = await stack.final(job.id, 90_000);
    expect(done).toMatchObject({ state: "succeeded", logTruncated: true });
    const lines = await allLines(stack, job.id);
    // 64 KiB of one-byte lines, at most (and the step's own lines), not 200,000 rows.
    expect(lines.length).toBeLessThan(66_000);
    expect(lines.some((l) => /^\[log truncated: \d+ lines/.test(l.text))).toBe(true);
  });
});

describeWith(bwrapGate(), "log flow while the API is unreachable [bwrap, pglite]", () => {
  let stack: Stack;
  let relay: Awaited<ReturnType<typeof switchableRelay>>;
  beforeAll(async () => {
    stack = await startStack(
      { queue: "outage", name: "outage-worker", logCapBytes: 64 * MIB, logBatchMs: 100 },
      { logCapBytes: 64 * MIB },
      undefined,
      async (apiUrl) => {
        relay = await switchableRelay(apiUrl);
        return relay.url;
      },
    );
  });
  afterAll(async () => {
    await relay?.up();
    await stack?.close();
    await relay?.close();
  });

  it("the worker stops reading (the writer blocks) instead of dropping lines, and everything arrives once the API is back", {
    timeout: 300_000,
  }, async () => {
    const total = 200_000; // 20 MB: more than the worker holds (8 MiB) while the API is away
    // Shorter than the stack's offline window (5 s): the worker keeps its lease through it.
    const outageMs = 3_000;
    // The step waits for a go-ahead file so that the outage starts before it writes anything.
    const job = await stack.submit({
      name: "outage-writer",
      steps: [{ name: "flood", run: `echo ready; while [ ! -e go ]; do sleep 0.05; done; ${writer(total)}` }],
    });
    await waitFor(
      "the step to start",
      async () => (await stack.logs(job.id)).some((l: { text: string }) => l.text === "ready"),
      60_000,
      50,
    );
    await relay.down();
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { readdirSync } = await import("node:fs");
    // The job's workspace is the one directory under the worker's root named after the job.
    const root = join(stack.workRoot, "outage-worker");
    const ws = readdirSync(root).find((d) => d.startsWith(`${job.id}-`));
    if (!ws) throw new Error(`no workspace for ${job.id} in ${root}`);
    writeFileSync(join(root, ws, "go"), "");
    await new Promise((r) => setTimeout(r, outageMs));
    await relay.up();
    const done = await stack.final(job.id, 240_000);
    expect(done).toMatchObject({ state: "succeeded", exitCode: 0, logTruncated: false });
    const lines = await allLines(stack, job.id);
    const out = lines.filter((l) => l.stream === "stdout" && l.text !== "ready");
    expect(out.length).toBe(total);
    for (let i = 0; i < out.length; i++) {
      if (numberOf(out[i]?.text ?? "") !== i + 1) expect(out[i]?.text, `line ${i + 1}`).toBe(`${i + 1}`);
    }
    const system = lines.filter((l) => l.stream === "system").map((l) => l.text);
    expect(
      system.filter((t) => /lines dropped|log truncated/.test(t)),
      system.join("\n"),
    ).toEqual([]);
    // It wrote 20 MB in well under a second when not held back; here it could not finish before
    // the API came back, since the worker holds at most 8 MiB: the step's time says it was blocked.
    const took = Number(/^--- flood succeeded in ([\d.]+) s$/.exec(system.at(-1) ?? "")?.[1]);
    expect(took, system.at(-1)).toBeGreaterThanOrEqual((outageMs - 500) / 1000);
  });
});
