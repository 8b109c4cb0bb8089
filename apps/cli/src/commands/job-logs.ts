import { isFinal, Job, JobWithSteps, LogLine } from "@skiff/protocol";
import type { Command } from "commander";
import { action, EXIT } from "../action.ts";
import { type ApiClient, type ConnectionOptions, connect, expectShape, withConnection } from "../client.ts";
import { followLogs, type JobStateChange, ProgressLine, printLogLine, watchJobStates } from "../follow.ts";
import { between, err, paint } from "../output.ts";

const LOG_PAGE = 1000;

/** `skiff jobs logs ID [-f]`: the stored output, or the live stream until the job ends. */
export function registerJobLogs(jobs: Command): void {
  withConnection(
    jobs
      .command("logs")
      .description("print a job's output; -f follows it live until the job ends")
      .argument("<id>", "the job's id")
      .option("-f, --follow", "keep streaming new lines until the job is final")
      .option("--json", "print each line as a JSON object, one per line"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { follow?: boolean; json?: boolean }) => {
      const client = connect(opts);
      const print = opts.json ? (l: LogLine) => process.stdout.write(`${JSON.stringify(l)}\n`) : printLogLine;
      const path = `/v1/jobs/${encodeURIComponent(id)}`;
      // Asked first so that a wrong id, a bad token or a down API is reported at once, not retried.
      const job = expectShape(Job, await client.get(path), "job");
      if (!opts.follow) {
        let after = 0;
        for (;;) {
          const page = (await client.get(`${path}/logs`, { after, limit: LOG_PAGE })) as { lines?: unknown };
          const lines = Array.isArray(page?.lines)
            ? page.lines.map((l) => expectShape(LogLine, l, "log line"))
            : [];
          for (const line of lines) print(line);
          const last = lines.at(-1);
          if (!last || lines.length < LOG_PAGE) break;
          after = last.seq;
        }
        return;
      }
      const interrupt = new AbortController();
      const onSigint = () => interrupt.abort();
      process.once("SIGINT", onSigint);
      try {
        const end = await followLogs(client, job.id, {
          onLine: print,
          signal: interrupt.signal,
        });
        if (interrupt.signal.aborted) {
          err(`stopped following; job ${job.id} keeps going`);
          process.exitCode = 130;
          return;
        }
        const exit = end.exitCode === null ? "" : ` (exit ${end.exitCode})`;
        err(paint(process.stderr, "dim", `job ${job.id} ${end.state}${exit}`));
      } finally {
        process.off("SIGINT", onSigint);
      }
    }),
  );
}

/**
 * `jobs submit --follow`: submits, shows the wait (queued, assigned, running) on one status line,
 * streams the output, and returns the exit code: 0 only if the job succeeded.
 */
export async function submitAndFollow(client: ApiClient, spec: unknown): Promise<number> {
  let jobId: string | null = null;
  let progress: ProgressLine | null = null;
  const early: JobStateChange[] = [];
  const show = (p: JobStateChange) => {
    if (p.jobId !== jobId || !progress || isFinal(p.state as Job["state"])) return;
    progress.update(p.state, noteFor(p.state, p.agentId, p.reason, p.queue));
  };
  // Subscribed before submitting, so the first state changes of a fast job are not missed.
  const watcher = await watchJobStates(client, (p) => {
    if (jobId === null) early.push(p);
    else show(p);
  });
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once("SIGINT", onSigint);
  try {
    const job = expectShape(Job, await client.post("/v1/jobs", spec), "job");
    jobId = job.id;
    err(`submitted job ${job.id} (${job.name}) to queue ${job.queue}`);
    progress = new ProgressLine(job.id);
    const line = progress;
    line.update(job.state, noteFor(job.state, job.agentId, undefined, job.queue));
    for (const p of early) show(p);
    await followLogs(client, job.id, {
      onLine(l) {
        line.stop();
        printLogLine(l);
      },
      signal: interrupt.signal,
    });
    line.stop();
    if (interrupt.signal.aborted) {
      err(
        `stopped following; job ${job.id} keeps going (cancel it with: skiff jobs cancel ${job.id} --reason ...)`,
      );
      return 130;
    }
    const final = expectShape(
      JobWithSteps,
      await client.get(`/v1/jobs/${encodeURIComponent(job.id)}`),
      "job",
    );
    err(summary(final));
    return final.state === "succeeded" ? EXIT.ok : EXIT.failed;
  } finally {
    process.off("SIGINT", onSigint);
    progress?.stop();
    watcher.close();
  }
}

function noteFor(state: string, agentId: string | null, reason?: string, queue?: string): string {
  if (state === "queued")
    return reason
      ? `(${reason}), waiting for a worker`
      : `waiting for a worker${queue ? ` on queue ${queue}` : ""}`;
  if (state === "assigned") return agentId ? `to agent ${agentId}` : "";
  if (state === "canceling") return reason ? `(${reason})` : "";
  return "";
}

function summary(job: JobWithSteps): string {
  const took = between(job.createdAt, job.finishedAt);
  const s = process.stderr;
  if (job.state === "succeeded") return paint(s, "green", `job ${job.id} succeeded in ${took}`);
  const exit = job.exitCode === null ? "" : ` with exit code ${job.exitCode}`;
  const failedStep = job.steps.find((st) => st.state === "failed" || st.state === "timed_out");
  const where = failedStep ? ` at step ${failedStep.name}` : "";
  const why = job.error ?? job.cancelReason;
  return paint(s, "red", `job ${job.id} ${job.state}${where}${exit} after ${took}${why ? `: ${why}` : ""}`);
}
