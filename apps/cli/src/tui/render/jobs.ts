// The protocol lists the states in the order a job passes through them: the order to sort by.
import { JOB_STATES, type Job } from "@skiff/protocol";
import { elapsed, formatAgo, formatDuration } from "./format.ts";
import { exitCodeCell, jobStateLabel } from "./jobstate.ts";
import type { Seg } from "./style.ts";
import type { Column } from "./table.ts";

/** A job's run time so far (or in all, once finished); `-` before it started. */
export function jobDuration(job: Job, now: number): string {
  return formatDuration(elapsed(job.startedAt, job.finishedAt, now));
}

/** `2 queued on a queue no online agent serves (gpu)`, or null when every queued job has a worker. */
export function unservedText(unserved: ReadonlyMap<string, number>): string | null {
  if (unserved.size === 0) return null;
  const total = [...unserved.values()].reduce((a, b) => a + b, 0);
  const queues = [...unserved].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (queues.length === 1) return `${total} queued on unserved queue ${queues[0]?.[0]}`;
  return `${total} queued on unserved queues: ${queues.map(([q, n]) => `${q} (${n})`).join(", ")}`;
}

/** The queue; for a queued job that no online agent would take, marked so it is not read as backlog. */
export function queueCell(j: Job, served: ReadonlySet<string> | null): Seg {
  if (served === null || j.state !== "queued" || served.has(j.queue)) return { text: j.queue };
  return { text: `⚠ ${j.queue}`, color: "yellow" };
}

export function jobColumns(
  now: number,
  agentName: (id: string) => string,
  served: ReadonlySet<string> | null = null,
): Column<Job>[] {
  return [
    { title: "ID", width: 26, cell: (j) => j.id, sort: (j) => j.id },
    { title: "NAME", width: 14, flex: 1, max: 48, cell: (j) => j.name, sort: (j) => j.name },
    {
      title: "STATE",
      width: 11,
      cell: (j) => jobStateLabel(j.state),
      sort: (j) => JOB_STATES.indexOf(j.state),
    },
    { title: "QUEUE", width: 10, flex: 1, max: 24, cell: (j) => queueCell(j, served), sort: (j) => j.queue },
    {
      title: "AGENT",
      width: 16,
      flex: 1,
      max: 32,
      cell: (j) => (j.agentId ? agentName(j.agentId) : "-"),
      sort: (j) => (j.agentId ? agentName(j.agentId) : ""),
    },
    {
      title: "TRY",
      width: 5,
      align: "right",
      cell: (j) => `${j.attempt}/${j.maxAttempts}`,
      sort: (j) => j.attempt,
    },
    {
      title: "CREATED",
      width: 12,
      align: "right",
      cell: (j) => formatAgo(j.createdAt, now),
      // Newest first reads as "smallest age": the later the time, the smaller the age.
      sort: (j) => -Date.parse(j.createdAt),
    },
    {
      title: "TOOK",
      width: 7,
      align: "right",
      cell: (j) => jobDuration(j, now),
      sort: (j) => (j.startedAt ? elapsed(j.startedAt, j.finishedAt, now) : -1),
      live: true,
    },
    {
      title: "EXIT",
      width: 4,
      align: "right",
      cell: (j) => exitCodeCell(j.exitCode),
      sort: (j) => j.exitCode ?? -1,
    },
  ];
}
