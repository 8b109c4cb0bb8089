import type { Job } from "@skiff/protocol";
import { elapsed, formatAgo, formatDuration } from "./format.ts";
import { exitCodeCell, jobStateLabel } from "./jobstate.ts";
import type { Column } from "./table.ts";

/** A job's run time so far (or in all, once finished); `-` before it started. */
export function jobDuration(job: Job, now: number): string {
  return formatDuration(elapsed(job.startedAt, job.finishedAt, now));
}

export function jobColumns(now: number, agentName: (id: string) => string): Column<Job>[] {
  return [
    { title: "ID", width: 26, cell: (j) => j.id },
    { title: "NAME", width: 14, flex: 1, cell: (j) => j.name },
    { title: "STATE", width: 11, cell: (j) => jobStateLabel(j.state) },
    { title: "QUEUE", width: 10, cell: (j) => j.queue },
    { title: "AGENT", width: 16, cell: (j) => (j.agentId ? agentName(j.agentId) : "-") },
    { title: "TRY", width: 5, align: "right", cell: (j) => `${j.attempt}/${j.maxAttempts}` },
    { title: "CREATED", width: 12, align: "right", cell: (j) => formatAgo(j.createdAt, now) },
    { title: "TOOK", width: 7, align: "right", cell: (j) => jobDuration(j, now) },
    { title: "EXIT", width: 4, align: "right", cell: (j) => exitCodeCell(j.exitCode) },
  ];
}
