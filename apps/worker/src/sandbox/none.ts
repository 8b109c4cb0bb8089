import { spawn } from "node:child_process";
import { superviseChild } from "./supervise.ts";
import type { SandboxDriver, StepEnd } from "./types.ts";

/**
 * `--unsafe-no-sandbox`: steps run as plain child processes of the worker, with its user, its
 * network and its view of the filesystem. Only a timeout and cancel apply. Every step says so.
 */
export function createUnsafeDriver(): SandboxDriver {
  return {
    kind: "none",
    async check() {},
    async reapOrphans() {
      return [];
    },
    async run(step): Promise<StepEnd> {
      step.onLine(
        "system",
        "sandbox: NONE (--unsafe-no-sandbox): this step runs unconfined as the worker's user, with its network",
      );
      const child = spawn("/bin/sh", ["-c", step.command], {
        cwd: step.workspace,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: step.workspace, ...step.env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      const killGroup = (signal: NodeJS.Signals) => {
        try {
          if (child.pid) process.kill(-child.pid, signal);
        } catch {
          // gone
        }
      };
      const { ending, code } = await superviseChild(child, step, killGroup);
      if (ending === "timed_out")
        return { outcome: "timed_out", exitCode: code, reason: "step ran past its timeout" };
      if (ending === "canceled") return { outcome: "canceled", exitCode: code, reason: "canceled" };
      if (code === 0) return { outcome: "succeeded", exitCode: 0 };
      return { outcome: "failed", exitCode: code, reason: `exit code ${code}` };
    },
  };
}
