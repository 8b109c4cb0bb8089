import type { JobWithSteps, Step } from "@skiff/protocol";
import { elapsed, formatBytes, formatDateTime, formatDuration } from "./format.ts";
import { exitCodeCell, jobStateLabel, stepStateLabel } from "./jobstate.ts";
import type { Line, Seg } from "./style.ts";
import { fieldLines } from "./table.ts";

function when(iso: string | null): string {
  return iso ? formatDateTime(iso) : "-";
}

function specText(job: JobWithSteps): string {
  const s = job.spec;
  const r = s.resources;
  const parts = [
    `timeout ${formatDuration(s.timeoutSeconds * 1000)}`,
    `memory ${r.memoryMb} MiB`,
    `cpus ${r.cpus}`,
    `pids ${r.pids}`,
    ...(r.diskMb === undefined ? [] : [`disk ${r.diskMb} MiB`]),
    ...(s.image ? [`image ${s.image}`] : []),
  ];
  return parts.join(", ");
}

/** One step: number, name, state, exit code, time taken, network. */
export function stepDetailLine(step: Step, network: string, now: number): Line {
  const took = step.startedAt ? formatDuration(elapsed(step.startedAt, step.finishedAt, now)) : "-";
  return [
    { text: `  ${String(step.index + 1).padStart(2)}  ${step.name.padEnd(20)} ` },
    stepStateLabel(step.state),
    { text: "  exit " },
    step.exitCode === null ? { text: "-" } : exitCodeCell(step.exitCode),
    { text: `  took ${took}  network ${network}` },
  ];
}

/**
 * Everything about one job on one screen: state and outcome, its attempts, the agent, when each stage
 * happened, the spec, and each step with its state, exit code and time. The keys to its neighbours
 * (log, agent, the job it retried) are in the footer.
 */
export function jobDetailLines(job: JobWithSteps, now: number, agentName: (id: string) => string): Line[] {
  const outcome: Seg[] = [jobStateLabel(job.state)];
  if (job.exitCode !== null) outcome.push({ text: "  exit " }, exitCodeCell(job.exitCode));
  const fields: [string, Seg | string][] = [
    ["Job", `${job.name}  (${job.id})`],
    ["State", { text: "" }],
    [
      "Attempt",
      `${job.attempt} of ${job.maxAttempts}${job.retryOf ? `, a retry of ${job.retryOf} (p opens it)` : ""}`,
    ],
    ["Agent", job.agentId ? `${agentName(job.agentId)}  (${job.agentId}; A opens it)` : "-"],
    ["Queue", job.queue],
    ["Submitted", `${when(job.createdAt)} by ${job.createdBy}`],
    ["Assigned", when(job.assignedAt)],
    ["Started", when(job.startedAt)],
    ["Finished", when(job.finishedAt)],
    ["Took", job.startedAt ? formatDuration(elapsed(job.startedAt, job.finishedAt, now)) : "-"],
    ["Log", `${formatBytes(job.logBytes)}${job.logTruncated ? " (cut to the log cap)" : ""}`],
    ["Spec", specText(job)],
  ];
  if (job.error) fields.push(["Error", { text: job.error, color: "red" }]);
  if (job.cancelReason) fields.push(["Canceled", { text: job.cancelReason, color: "yellow" }]);
  const lines = fieldLines(fields);
  // The state line carries several styled pieces: put them after its label.
  const stateLine = lines[1];
  if (stateLine) lines[1] = [stateLine[0] ?? { text: "" }, ...outcome];
  lines.push([], [{ text: `Steps (${job.steps.length})`, bold: true }]);
  for (const step of job.steps) {
    const spec = job.spec.steps[step.index];
    lines.push(stepDetailLine(step, spec?.network ?? "off", now));
  }
  return lines;
}
