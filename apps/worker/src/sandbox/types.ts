import type { Limits } from "./cgroup.ts";
import type { Flow } from "./lines.ts";

export type { Limits };

/** `system` lines come from Skiff itself: how the step is confined, why it was killed. */
export type StreamName = "stdout" | "stderr" | "system";

export interface StepRun {
  jobId: string;
  /** The worker's stable name, for labelling what the step leaves behind (containers, cgroups). */
  workerName: string;
  stepIndex: number;
  /** Shell command, run with `/bin/sh -c`. */
  command: string;
  env: Record<string, string>;
  /** Host directory bound read-write at `/workspace`; lives as long as the job. */
  workspace: string;
  network: "on" | "off";
  limits: Limits;
  /** Docker image (ignored by bwrap, which uses the host's or a configured rootfs). */
  image?: string;
  /** Output, already split into lines (without the newline). The driver first writes a `system` line
   * saying how the step is confined and which limits are enforced, and how. */
  onLine(stream: StreamName, text: string): void;
  /** Backpressure: while full, the driver stops reading the step's output (the step's writes block). */
  flow?: Flow;
  /** Aborted to cancel: the step gets SIGTERM, then SIGKILL after the grace period. */
  signal: AbortSignal;
  timeoutMs: number;
  graceMs: number;
}

export type StepEnd =
  | { outcome: "succeeded"; exitCode: 0 }
  | { outcome: "failed"; exitCode: number | null; reason: string }
  | { outcome: "timed_out"; exitCode: number | null; reason: string }
  | { outcome: "canceled"; exitCode: number | null; reason: string };

/** One way of running a step in isolation. Drivers are stateless between steps. */
export interface SandboxDriver {
  readonly kind: "bwrap" | "docker" | "none";
  /** Throws with what to install or fix when the driver cannot run on this host. */
  check(): Promise<void>;
  run(run: StepRun): Promise<StepEnd>;
  /** Removes whatever a previous life of this worker left behind (containers, cgroups). */
  reapOrphans(workerName: string): Promise<string[]>;
}
