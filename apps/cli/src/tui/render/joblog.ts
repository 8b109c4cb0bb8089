import type { JobWithSteps, LogLine, Step } from "@skiff/protocol";
import { elapsed, formatClock, formatDuration } from "./format.ts";
import { exitCodeCell, jobStateLabel, stepStateLabel } from "./jobstate.ts";
import type { Color, Line, Seg } from "./style.ts";
import { sanitize } from "./text.ts";

const STREAM_COLORS: Record<LogLine["stream"], Color | undefined> = {
  stdout: undefined,
  stderr: "red",
  system: "cyan",
};

/**
 * A log line: its time (unless `timestamps` is off) and its text, stderr and system lines marked in
 * words as well as colour.
 */
export function logLineView(line: LogLine, timestamps = true): Line {
  const color = STREAM_COLORS[line.stream];
  const tag = line.stream === "stdout" ? "" : line.stream === "stderr" ? "err " : "sys ";
  const text: Seg = { text: `${tag}${sanitize(line.text)}` };
  if (color) text.color = color;
  return timestamps ? [{ text: `${formatClock(line.ts)} `, color: "gray" }, text] : [text];
}

/** A log line as saved to a file: full time, stream, and the text exactly as the job wrote it. */
export function logLineText(line: LogLine): string {
  return `${line.ts} ${line.stream.padEnd(6)} ${line.text}`;
}

/**
 * The rule drawn where a new step's output begins: its name, and its state and exit code when known.
 * Those are the latest attempt's: a step of an earlier attempt gets its attempt instead, so one that
 * was cut short is never shown with the retry's `✓ ok` (its own result, if any, is in its lines).
 */
export function stepMarker(index: number, step: Step | undefined, ofAttempt?: number): Line {
  const name = step ? step.name : `step ${index}`;
  const out: Line = [{ text: `── step ${index + 1}: ${name} `, bold: true }];
  if (ofAttempt !== undefined) out.push({ text: `(attempt ${ofAttempt})`, color: "gray" });
  else if (step) {
    out.push(stepStateLabel(step.state));
    if (step.exitCode !== null) out.push({ text: " exit " }, exitCodeCell(step.exitCode));
  }
  out.push({ text: " ──", bold: true });
  return out;
}

/** The rule drawn where a later attempt's output begins. */
export function attemptMarker(attempt: number): Line {
  return [{ text: `══ attempt ${attempt} ══`, bold: true, color: "yellow" }];
}

/** The job's header: name, state, agent, attempt, time taken, exit code. */
export function jobHeader(job: JobWithSteps, now: number, agentName: (id: string) => string): Line {
  const line: Line = [
    { text: `${job.name} `, bold: true },
    { text: `${job.id}  ` },
    jobStateLabel(job.state),
    { text: `  agent ${job.agentId ? agentName(job.agentId) : "-"}  try ${job.attempt}/${job.maxAttempts}` },
    { text: `  took ${formatDuration(elapsed(job.startedAt, job.finishedAt, now))}` },
  ];
  if (job.exitCode !== null) line.push({ text: "  exit " }, exitCodeCell(job.exitCode));
  if (job.error) line.push({ text: `  ${job.error}`, color: "red" });
  if (job.cancelReason) line.push({ text: `  canceled: ${job.cancelReason}`, color: "yellow" });
  return line;
}

/** Every step on one line: `1 clone ✓ ok 0 │ 2 build ▶ running`. */
export function stepsLine(steps: readonly Step[]): Line {
  const line: Line = [];
  steps.forEach((s, i) => {
    if (i > 0) line.push({ text: " │ ", color: "gray" });
    line.push({ text: `${s.index + 1} ${s.name} ` }, stepStateLabel(s.state));
    if (s.exitCode !== null) line.push({ text: " " }, exitCodeCell(s.exitCode));
  });
  return line;
}

/** The closing rule once the stream says the job is final. */
export function endMarker(state: string, exitCode: number | null): Line {
  const ok = state === "succeeded";
  return [
    {
      text: `── job ${state.replace("_", " ")}${exitCode === null ? "" : `, exit ${exitCode}`} ──`,
      color: ok ? "green" : "red",
      bold: true,
    },
  ];
}
