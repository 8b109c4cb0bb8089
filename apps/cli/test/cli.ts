import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@skiff/testkit";
import { registerAgent, type TestApi } from "../../api/test/harness.ts";

const root = new URL("../../../", import.meta.url).pathname;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running `skiff` child whose output accumulates as it arrives. */
export interface CliProc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<CliResult>;
  /** Resolves once `pattern` appears on stdout or stderr; fails early if the child exits first. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
}

const children = new Set<ChildProcess>();

/** An empty SKIFF_HOME, so no admin.token from the developer's checkout is ever picked up. */
export function emptyHome(): string {
  return mkdtempSync(join(tmpdir(), "skiff-cli-test-"));
}

/**
 * Starts the real CLI (`node --import tsx apps/cli/src/main.ts`) from the repository root against
 * `url`. The environment is cleaned of SKIFF_* so only what the test passes counts.
 */
export function startCli(args: string[], env: Record<string, string | undefined>, input?: string): CliProc {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("SKIFF_") && v !== undefined) base[k] = v;
  const child = spawn(process.execPath, ["--import", "tsx", "apps/cli/src/main.ts", ...args], {
    cwd: root,
    env: { ...base, NO_COLOR: "1", ...env } as NodeJS.ProcessEnv,
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  children.add(child);
  if (input !== undefined) child.stdin?.end(input);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<CliResult>((resolve) =>
    child.once("close", (code) => {
      children.delete(child);
      resolve({ code, stdout, stderr });
    }),
  );
  let exited = false;
  void done.then(() => {
    exited = true;
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    done,
    async waitForOutput(pattern, timeoutMs = 20_000) {
      const seen = () => {
        const all = `${stdout}\n${stderr}`;
        return typeof pattern === "string" ? all.includes(pattern) : pattern.test(all);
      };
      await waitFor(
        `CLI output ${String(pattern)}`,
        () => {
          if (seen()) return true;
          if (exited) throw new Error(`the CLI exited first; stdout:\n${stdout}\nstderr:\n${stderr}`);
          return false;
        },
        timeoutMs,
      );
    },
  };
}

/** Runs the CLI to completion, with a deadline. */
export async function runCli(
  args: string[],
  env: Record<string, string | undefined>,
  input?: string,
  timeoutMs = 30_000,
): Promise<CliResult> {
  const proc = startCli(args, env, input);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      proc.child.kill("SIGKILL");
      reject(new Error(`skiff ${args.join(" ")} did not exit in ${timeoutMs} ms; stderr:\n${proc.stderr()}`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([proc.done, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A loopback port nothing listens on (for the "API is down" cases). */

/** Kills any CLI child a failed test left behind and reports how many there were. */
export function killLeftovers(): number {
  const n = children.size;
  for (const c of children) c.kill("SIGKILL");
  children.clear();
  return n;
}

/** Acts as a worker through the agent protocol: claims one job and reports on it. */
export async function claimAs(t: TestApi, queue: string) {
  const agentId = await registerAgent(t, `agent-${queue}`, { queue });
  const claimed = await waitFor(`a job on ${queue} to claim`, async () => {
    const res = await t.call("POST", "/v1/agent/claim", { token: t.tokens.agent, body: { agentId, max: 1 } });
    return res.body.jobs?.[0];
  });
  const jobId: string = claimed.job.id;
  const epoch: number = claimed.epoch;
  let seq = 0;
  const post = async (events: unknown[]) => {
    const res = await t.call("POST", `/v1/agent/jobs/${jobId}/events`, {
      token: t.tokens.agent,
      body: { agentId, epoch, events },
    });
    if (res.status !== 200) throw new Error(`events: ${res.status} ${JSON.stringify(res.body)}`);
  };
  return {
    agentId,
    jobId,
    startStep: (step: number) => post([{ type: "step.started", step }]),
    lines: (lines: { stream: "stdout" | "stderr" | "system"; text: string }[], step = 0) =>
      post(lines.map((l) => ({ type: "log", seq: ++seq, step, ...l }))),
    finishStep: (step: number, outcome: "succeeded" | "failed", exitCode: number) =>
      post([{ type: "step.finished", step, outcome, exitCode }]),
    async finish(outcome: "succeeded" | "failed", exitCode: number, error?: string) {
      const res = await t.call("POST", `/v1/agent/jobs/${jobId}/finish`, {
        token: t.tokens.agent,
        body: { agentId, epoch, outcome, exitCode, ...(error ? { error } : {}) },
      });
      if (res.status !== 200) throw new Error(`finish: ${res.status} ${JSON.stringify(res.body)}`);
    },
  };
}

export { freePort } from "@skiff/testkit";
