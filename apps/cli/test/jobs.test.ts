import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../api/test/harness.ts";
import { claimAs, emptyHome, killLeftovers, runCli, startCli } from "./cli.ts";

let t: TestApi;
let env: Record<string, string>;
const dir = mkdtempSync(join(tmpdir(), "skiff-cli-jobs-"));
let n = 0;
const unique = (p: string) => `${p}-${++n}-${Date.now().toString(36)}`;

function jobFile(name: string, content: string): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

const yamlJob = (queue: string, name = "yaml-job") => `
name: ${name}
queue: ${queue}
timeoutSeconds: 60
steps:
  - { name: build, run: "echo built", network: off }
  - name: test
    run: npm test
`;

async function jobsOnQueue(queue: string): Promise<{ id: string; name: string; state: string }[]> {
  const res = await t.call("GET", `/v1/jobs?queue=${queue}`);
  return res.body.items;
}

beforeAll(async () => {
  // Agents here report through the protocol by hand and do not heartbeat: keep them from going offline.
  t = await startTestApi({ adapter: "pglite", config: { offlineAfterMs: 300_000 } });
  env = { SKIFF_URL: t.url, SKIFF_TOKEN: t.tokens.operator, SKIFF_HOME: emptyHome() };
});

afterEach(() => {
  expect(killLeftovers(), "CLI processes left running").toBe(0);
});

afterAll(async () => {
  await t?.close();
});

describe("skiff jobs submit", { timeout: 120_000 }, () => {
  it("submits a YAML file and reports the job", async () => {
    const queue = unique("yq");
    const res = await runCli(["jobs", "submit", "-f", jobFile("ok.yaml", yamlJob(queue))], env);
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    const [job] = await jobsOnQueue(queue);
    expect(job).toMatchObject({ name: "yaml-job", state: "queued" });
    expect(res.stdout).toContain(`submitted job ${job?.id} (yaml-job) to queue ${queue}: queued`);
    expect(res.stdout).toContain(`skiff jobs logs ${job?.id} -f`);
  });

  it("submits JSON from a file and from stdin, printing the API object with --json", async () => {
    const queue = unique("jq");
    const spec = { name: "json-job", queue, steps: [{ name: "one", run: "true" }] };
    const fromFile = await runCli(
      ["jobs", "submit", "-f", jobFile("ok.json", JSON.stringify(spec)), "--json"],
      env,
    );
    expect(fromFile.code).toBe(0);
    const created = JSON.parse(fromFile.stdout);
    expect(created).toMatchObject({ name: "json-job", queue, state: "queued", maxAttempts: 3 });
    const fromStdin = await runCli(
      ["jobs", "submit", "-f", "-"],
      env,
      JSON.stringify({ ...spec, name: "piped" }),
    );
    expect(fromStdin.code).toBe(0);
    expect((await jobsOnQueue(queue)).map((j) => j.name).sort()).toEqual(["json-job", "piped"]);
  });

  it("refuses a bad file with the field's path and exit 2, sending nothing", async () => {
    const queue = unique("bad");
    const bad = `name: broken\nqueue: ${queue}\nsteps:\n  - { name: a, run: "true", network: maybe }\n  - { name: b, run: "true", colour: red }\n`;
    const audited = (await t.call("GET", "/v1/audit?limit=1")).body.items[0].seq;
    const res = await runCli(["jobs", "submit", "-f", jobFile("bad.yaml", bad)], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("invalid job file");
    expect(res.stderr).toContain("nothing was submitted");
    expect(res.stderr).toMatch(/steps\[0\]\.network: expected "on" or "off"/);
    expect(res.stderr).toContain("steps[1].colour: unknown field");
    expect(res.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(await jobsOnQueue(queue)).toEqual([]);
    expect((await t.call("GET", "/v1/audit?limit=1")).body.items[0].seq).toBe(audited);

    const missing = await runCli(["jobs", "submit", "-f", join(dir, "nope.yaml")], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("nope.yaml: no such file");
  });
});

describe("skiff jobs ls / get / cancel / retry", { timeout: 120_000 }, () => {
  it("lists and shows a job, as tables and as the API objects", async () => {
    const queue = unique("lq");
    const sub = await runCli(
      ["jobs", "submit", "-f", jobFile("l.yaml", yamlJob(queue, "listed")), "--json"],
      env,
    );
    const id: string = JSON.parse(sub.stdout).id;

    const [ls, table, get, getJson, missing] = await Promise.all([
      runCli(["jobs", "ls", "--queue", queue, "--json"], env),
      runCli(["jobs", "ls", "--state", "queued", "--limit", "5"], env),
      runCli(["jobs", "get", id], env),
      runCli(["jobs", "get", id, "--json"], env),
      runCli(["jobs", "get", "no-such-job"], env),
    ]);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([
      expect.objectContaining({ id, name: "listed", queue, state: "queued" }),
    ]);

    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^ID\s+NAME\s+QUEUE\s+STATE\s+ATTEMPT\s+AGENT\s+CREATED\s+DURATION$/);
    expect(rows.find((r) => r.startsWith(id))).toMatch(
      /listed\s+\S+\s+queued\s+0\/3\s+-\s+(just now|\d+s ago)\s+-$/,
    );

    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`id:\\s+${id}`));
    expect(get.stdout).toMatch(/state:\s+queued/);
    expect(get.stdout).toMatch(/attempt:\s+none yet \(at most 3\)/);
    expect(get.stdout).toMatch(/STEP\s+STATE/);
    expect(get.stdout).toMatch(/build\s+pending/);
    expect(JSON.parse(getJson.stdout).steps.map((s: { name: string }) => s.name)).toEqual(["build", "test"]);

    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("skiff: no job no-such-job (not_found)\n");
  });

  it("cancels with a reason and retries the canceled job", async () => {
    const queue = unique("cq");
    const sub = await runCli(
      ["jobs", "submit", "-f", jobFile("c.yaml", yamlJob(queue, "canceled")), "--json"],
      env,
    );
    const id: string = JSON.parse(sub.stdout).id;

    const [noReason, cancel] = await Promise.all([
      runCli(["jobs", "cancel", id], env),
      runCli(["jobs", "cancel", id, "--reason", "wrong branch"], env),
    ]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain("--reason");
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`job ${id}: canceled (reason: wrong branch)`);
    expect((await t.call("GET", `/v1/jobs/${id}`)).body).toMatchObject({
      state: "canceled",
      cancelReason: "wrong branch",
    });

    const [again, retry] = await Promise.all([
      runCli(["jobs", "cancel", id, "--reason", "twice"], env),
      runCli(["jobs", "retry", id], env),
    ]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      /^skiff: job \S+ is canceled; only queued or running jobs can be canceled \(invalid_transition\)\n$/,
    );
    expect(retry.code).toBe(0);
    const newId = /as job (\S+) \(queued\)/.exec(retry.stdout)?.[1];
    expect(newId).toBeDefined();
    expect((await t.call("GET", `/v1/jobs/${newId}`)).body).toMatchObject({ retryOf: id, state: "queued" });
  });

  it("rejects a bad --state and --limit as usage errors", async () => {
    const [state, limit] = await Promise.all([
      runCli(["jobs", "ls", "--state", "done"], env),
      runCli(["jobs", "ls", "--limit", "zero"], env),
    ]);
    expect(state.code).toBe(2);
    expect(state.stderr).toContain("--state must be one of queued, assigned, running");
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('--limit must be a whole number of at least 1, got "zero"');
  });
});

describe("skiff jobs logs", { timeout: 120_000 }, () => {
  it("prints stored output by stream, then follows live lines until the job finishes", async () => {
    const queue = unique("log");
    await runCli(["jobs", "submit", "-f", jobFile("log.yaml", yamlJob(queue, "logged"))], env);
    const agent = await claimAs(t, queue);
    await agent.startStep(0);
    await agent.lines([
      { stream: "stdout", text: "compiling 3 files" },
      { stream: "stderr", text: "warning: deprecated API" },
      { stream: "system", text: "--- build succeeded in 0.1 s" },
    ]);

    const [stored, asJson] = await Promise.all([
      runCli(["jobs", "logs", agent.jobId], env),
      runCli(["jobs", "logs", agent.jobId, "--json"], env),
    ]);
    expect(stored.code).toBe(0);
    expect(stored.stdout).toBe("compiling 3 files\n");
    expect(stored.stderr).toBe("warning: deprecated API\n[system] --- build succeeded in 0.1 s\n");

    const lines = asJson.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.seq, l.stream, l.text])).toEqual([
      [1, "stdout", "compiling 3 files"],
      [2, "stderr", "warning: deprecated API"],
      [3, "system", "--- build succeeded in 0.1 s"],
    ]);

    const follow = startCli(["jobs", "logs", agent.jobId, "-f"], env);
    await follow.waitForOutput("compiling 3 files");
    await agent.lines([{ stream: "stdout", text: "tests: 12 passed" }], 1);
    await follow.waitForOutput("tests: 12 passed");
    expect(follow.child.exitCode).toBeNull(); // still following while the job runs
    await agent.finish("succeeded", 0);
    const res = await follow.done;
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("compiling 3 files\ntests: 12 passed\n");
    expect(res.stderr).toContain(`job ${agent.jobId} succeeded (exit 0)`);
  });
});

describe("skiff jobs submit --follow", { timeout: 120_000 }, () => {
  it("shows the wait, streams the output and exits 0 when the job succeeds", async () => {
    const queue = unique("fok");
    const proc = startCli(
      ["jobs", "submit", "-f", jobFile("f.yaml", yamlJob(queue, "followed")), "--follow"],
      env,
    );
    await proc.waitForOutput(/waiting for a worker on queue/);
    const agent = await claimAs(t, queue);
    await proc.waitForOutput(`job ${agent.jobId}: assigned to agent ${agent.agentId}`);
    await agent.startStep(0);
    await proc.waitForOutput(`job ${agent.jobId}: running`);
    await agent.lines([
      { stream: "stdout", text: "hello from the job" },
      { stream: "stderr", text: "a warning" },
    ]);
    await proc.waitForOutput("hello from the job");
    await agent.finishStep(0, "succeeded", 0);
    await agent.finish("succeeded", 0);
    const res = await proc.done;
    expect(res.code).toBe(0);
    expect(res.stdout).toBe("hello from the job\n");
    const err = res.stderr.split("\n");
    expect(err[0]).toBe(`submitted job ${agent.jobId} (followed) to queue ${queue}`);
    // Not a terminal: one line per state, in order, never rewritten in place.
    const states = err.filter((l) => l.startsWith(`job ${agent.jobId}: `));
    expect(states).toEqual([
      `job ${agent.jobId}: queued waiting for a worker on queue ${queue}`,
      `job ${agent.jobId}: assigned to agent ${agent.agentId}`,
      `job ${agent.jobId}: running`,
    ]);
    expect(res.stderr).not.toContain("\r");
    expect(res.stderr).toContain("a warning");
    expect(res.stderr).toMatch(new RegExp(`job ${agent.jobId} succeeded in \\d+(ms|s)`));
  });

  it("exits 1 and says why when the job fails", async () => {
    const queue = unique("ffail");
    const proc = startCli(
      ["jobs", "submit", "-f", jobFile("ff.yaml", yamlJob(queue, "doomed")), "--follow"],
      env,
    );
    await proc.waitForOutput(/waiting for a worker/);
    const agent = await claimAs(t, queue);
    await agent.startStep(0);
    await agent.lines([{ stream: "stderr", text: "npm ERR! missing script: test" }]);
    await agent.finishStep(0, "failed", 1);
    await agent.finish("failed", 1, "step build exited with 1");
    const res = await proc.done;
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("npm ERR! missing script: test");
    expect(res.stderr).toMatch(
      new RegExp(
        `job ${agent.jobId} failed at step build with exit code 1 after \\S+: step build exited with 1`,
      ),
    );
  });
});
