import type { ChildProcess } from "node:child_process";
import { LineSplitter, readWithFlow } from "./lines.ts";
import type { StepRun } from "./types.ts";

export interface ChildEnd {
  /** Set when Skiff ended the step (timeout or cancel) rather than the step ending by itself. */
  ending: "timed_out" | "canceled" | null;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Streams a step process's output line by line and enforces its wall-clock timeout and cancel:
 * SIGTERM first, SIGKILL after the grace period. `signal` delivers a signal to the whole step.
 */
export async function superviseChild(
  child: ChildProcess,
  step: StepRun,
  signal: (sig: NodeJS.Signals) => void,
): Promise<ChildEnd> {
  const out = new LineSplitter((text) => step.onLine("stdout", text));
  const err = new LineSplitter((text) => step.onLine("stderr", text));
  // While the reporter is full the pipes are not read, so the step blocks in write(); once Skiff
  // ends the step, reading goes on regardless so that the process can be reaped.
  const readers = [child.stdout, child.stderr].flatMap((source, i) =>
    source ? [readWithFlow(source, (b) => (i === 0 ? out : err).push(b), step.flow)] : [],
  );

  let ending: ChildEnd["ending"] = null;
  let killTimer: NodeJS.Timeout | undefined;
  const stop = (why: "timed_out" | "canceled") => {
    if (ending) return;
    ending = why;
    for (const r of readers) r.release();
    signal("SIGTERM");
    killTimer = setTimeout(() => signal("SIGKILL"), step.graceMs);
  };
  const timer = setTimeout(() => stop("timed_out"), step.timeoutMs);
  const onAbort = () => stop("canceled");
  step.signal.addEventListener("abort", onAbort, { once: true });
  if (step.signal.aborted) onAbort();

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, sig) => resolve({ code, signal: sig }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  clearTimeout(timer);
  clearTimeout(killTimer);
  step.signal.removeEventListener("abort", onAbort);
  out.end();
  err.end();
  return { ending, code: exit.code, signal: exit.signal };
}
