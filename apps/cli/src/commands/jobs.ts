import { JOB_STATES, Job, type JobState, JobWithSteps } from "@skiff/protocol";
import type { Command } from "commander";
import { action, wholeNumber } from "../action.ts";
import { type ConnectionOptions, connect, expectPage, expectShape, withConnection } from "../client.ts";
import { UsageError } from "../env.ts";
import { readJobFile } from "../jobfile.ts";
import { ago, between, out, paint, printFields, printJson, printTable, stateCell } from "../output.ts";
import { registerJobLogs, submitAndFollow } from "./job-logs.ts";

const PAGE_MAX = 500;

interface ListOptions extends ConnectionOptions {
  state?: string;
  queue?: string;
  limit: string;
  json?: boolean;
}

export function registerJobs(program: Command): void {
  const jobs = program.command("jobs").description("submit, list, follow, cancel and retry jobs");

  withConnection(
    jobs
      .command("submit")
      .description("submit a job from a YAML or JSON JobSpec file, checked locally first")
      .requiredOption("-f, --file <file>", "the JobSpec file (YAML or JSON; `-` reads stdin)")
      .option("--follow", "wait for the job, stream its output, and exit 0 only if it succeeded")
      .option("--json", "print the created job as JSON (without --follow)"),
  ).action(
    action(async (opts: ConnectionOptions & { file: string; follow?: boolean; json?: boolean }) => {
      const spec = await readJobFile(opts.file);
      const client = connect(opts);
      if (opts.follow) {
        process.exitCode = await submitAndFollow(client, spec);
        return;
      }
      const raw = await client.post("/v1/jobs", spec);
      const job = expectShape(Job, raw, "job");
      if (opts.json) return printJson(raw);
      out(`submitted job ${job.id} (${job.name}) to queue ${job.queue}: ${job.state}`);
      out(`follow it with: skiff jobs logs ${job.id} -f`);
    }),
  );

  withConnection(
    jobs
      .command("ls")
      .description("list jobs, newest first")
      .option("--state <state>", `only jobs in this state (${JOB_STATES.join(", ")})`)
      .option("--queue <queue>", "only jobs on this queue")
      .option("--limit <n>", "at most this many jobs", "50")
      .option("--json", "print the jobs as a JSON array of API objects"),
  ).action(
    action(async (opts: ListOptions) => {
      if (opts.state !== undefined && !JOB_STATES.includes(opts.state as JobState))
        throw new UsageError(`--state must be one of ${JOB_STATES.join(", ")}, got "${opts.state}"`);
      const limit = wholeNumber(opts.limit, "--limit", 1);
      const client = connect(opts);
      const items: Job[] = [];
      const raw: unknown[] = [];
      let cursor: string | undefined;
      do {
        const page = expectPage(
          Job,
          await client.get("/v1/jobs", {
            state: opts.state,
            queue: opts.queue,
            limit: Math.min(PAGE_MAX, limit - items.length),
            cursor,
          }),
          "job",
        );
        items.push(...page.items);
        raw.push(...page.raw);
        cursor = page.nextCursor ?? undefined;
      } while (cursor && items.length < limit);
      if (opts.json) return printJson(raw);
      const s = process.stdout;
      printTable(
        ["ID", "NAME", "QUEUE", "STATE", "ATTEMPT", "AGENT", "CREATED", "DURATION"],
        items.map((j) => [
          j.id,
          j.name,
          j.queue,
          stateCell(s, j.state),
          `${j.attempt}/${j.maxAttempts}`,
          j.agentId ?? "-",
          ago(j.createdAt),
          j.startedAt ? between(j.startedAt, j.finishedAt) : "-",
        ]),
        "no jobs match",
      );
    }),
  );

  withConnection(
    jobs
      .command("get")
      .description("show one job with its steps, attempts, agent and timings")
      .argument("<id>", "the job's id")
      .option("--json", "print the API object"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { json?: boolean }) => {
      const raw = await connect(opts).get(`/v1/jobs/${encodeURIComponent(id)}`);
      if (opts.json) return printJson(raw);
      printJob(expectShape(JobWithSteps, raw, "job"));
    }),
  );

  withConnection(
    jobs
      .command("cancel")
      .description("cancel a queued or running job, saying why")
      .argument("<id>", "the job's id")
      .requiredOption("--reason <reason>", "why (recorded in the audit log)")
      .option("--json", "print the updated job"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { reason: string; json?: boolean }) => {
      if (opts.reason.trim() === "") throw new UsageError("--reason must not be empty");
      const raw = await connect(opts).post(`/v1/jobs/${encodeURIComponent(id)}/cancel`, {
        reason: opts.reason,
      });
      if (opts.json) return printJson(raw);
      const job = expectShape(Job, raw, "job");
      out(`job ${job.id}: ${job.state} (reason: ${job.cancelReason ?? opts.reason})`);
    }),
  );

  withConnection(
    jobs
      .command("retry")
      .description("run a finished job again as a new job")
      .argument("<id>", "the finished job's id")
      .option("--json", "print the new job"),
  ).action(
    action(async (id: string, opts: ConnectionOptions & { json?: boolean }) => {
      const raw = await connect(opts).post(`/v1/jobs/${encodeURIComponent(id)}/retry`, {});
      if (opts.json) return printJson(raw);
      const job = expectShape(Job, raw, "job");
      out(`retried job ${id} as job ${job.id} (${job.state})`);
    }),
  );

  registerJobLogs(jobs);
}

function printJob(job: JobWithSteps): void {
  const s = process.stdout;
  const exit = job.exitCode === null ? "" : ` (exit ${job.exitCode})`;
  const fields: [string, string][] = [
    ["id", job.id],
    ["name", job.name],
    ["queue", job.queue],
    ["state", `${stateCell(s, job.state)}${exit}`],
    [
      "attempt",
      job.attempt === 0 ? `none yet (at most ${job.maxAttempts})` : `${job.attempt} of ${job.maxAttempts}`,
    ],
    ["agent", job.agentId ?? "-"],
    ["created", `${ago(job.createdAt)} by ${job.createdBy} (${job.createdAt})`],
    ["assigned", ago(job.assignedAt)],
    ["started", ago(job.startedAt)],
    ["finished", ago(job.finishedAt)],
    ["queued for", between(job.createdAt, job.assignedAt ?? job.finishedAt)],
    ["ran for", job.startedAt ? between(job.startedAt, job.finishedAt) : "-"],
  ];
  if (job.error) fields.push(["error", paint(s, "red", job.error)]);
  if (job.cancelReason) fields.push(["cancel reason", job.cancelReason]);
  if (job.retryOf) fields.push(["retry of", job.retryOf]);
  printFields(fields);
  out();
  printTable(
    ["#", "STEP", "STATE", "EXIT", "DURATION"],
    job.steps.map((st) => [
      String(st.index + 1),
      st.name,
      stateCell(s, st.state),
      st.exitCode === null ? "-" : String(st.exitCode),
      st.startedAt ? between(st.startedAt, st.finishedAt) : "-",
    ]),
    "(no steps recorded)",
  );
}
