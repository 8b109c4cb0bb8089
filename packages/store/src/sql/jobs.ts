import type { Job, JobSpec, JobState, JobWithSteps } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { toJob, toStep } from "../rows.ts";
import { jobStateSql } from "./events.ts";
import { RELAXED_CTE } from "./relaxed.ts";

export async function insertJob(
  q: Queryable,
  input: { id: string; spec: JobSpec; createdBy: string; retryOf?: string | null },
): Promise<Job> {
  const { id, spec } = input;
  // The job and its steps in one statement: one round trip on the submit path.
  const res = await q.query(
    `with job as (
       insert into jobs (id, name, queue, state, spec, max_attempts, timeout_seconds, created_by, retry_of)
       values ($1, $2, $3, 'queued', $4, $5, $6, $7, $8) returning *
     ),
     steps as (
       insert into job_steps (job_id, idx, name)
       select job.id, s.idx - 1, s.name from job, unnest($9::text[]) with ordinality as s(name, idx)
     )
     select * from job`,
    [
      id,
      spec.name,
      spec.queue,
      JSON.stringify(spec),
      spec.maxAttempts,
      spec.timeoutSeconds,
      input.createdBy,
      input.retryOf ?? null,
      spec.steps.map((s) => s.name),
    ],
  );
  const row = res.rows[0];
  if (!row) throw new Error("insert into jobs returned no row");
  return toJob(row);
}

export async function getJob(
  q: Queryable,
  id: string,
  opts: { forUpdate?: boolean } = {},
): Promise<Job | null> {
  const res = await q.query(`select * from jobs where id = $1${opts.forUpdate ? " for update" : ""}`, [id]);
  const row = res.rows[0];
  return row ? toJob(row) : null;
}

export async function getJobWithSteps(q: Queryable, id: string): Promise<JobWithSteps | null> {
  const job = await getJob(q, id);
  if (!job) return null;
  const steps = await q.query("select * from job_steps where job_id = $1 order by idx", [id]);
  return { ...job, steps: steps.rows.map(toStep) };
}

export interface JobFilter {
  state?: JobState;
  queue?: string;
  /** Case-insensitive substring of the name or id. */
  text?: string;
  /** Keyset cursor: jobs strictly older than this (createdAt, id). */
  before?: { createdAt: string; id: string };
  limit: number;
}

export async function listJobs(q: Queryable, f: JobFilter): Promise<Job[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.state) where.push(`state = ${p(f.state)}`);
  if (f.queue) where.push(`queue = ${p(f.queue)}`);
  if (f.text) {
    const like = p(`%${f.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(`(name ilike ${like} or id ilike ${like})`);
  }
  if (f.before) where.push(`(created_at, id) < (${p(f.before.createdAt)}::timestamptz, ${p(f.before.id)})`);
  const sql = `select * from jobs ${where.length ? `where ${where.join(" and ")}` : ""}
    order by created_at desc, id desc limit ${p(f.limit)}`;
  const res = await q.query(sql, params);
  return res.rows.map(toJob);
}

/** Queued jobs on the given queues (the partial index `jobs_queued_idx` answers it). */
export async function countQueuedOn(q: Queryable, queues: readonly string[]): Promise<number> {
  const res = await q.query<{ n: number }>(
    "select count(*)::int as n from jobs where state = 'queued' and queue = any($1::text[])",
    [queues],
  );
  return Number(res.rows[0]?.n ?? 0);
}

/** Queued jobs per queue: what the console weighs against the queues its agents serve. */
export async function countQueuedByQueue(q: Queryable): Promise<Record<string, number>> {
  const res = await q.query<{ queue: string; n: number }>(
    "select queue, count(*)::int as n from jobs where state = 'queued' group by queue",
  );
  const out: Record<string, number> = {};
  for (const r of res.rows) out[r.queue] = Number(r.n);
  return out;
}

export async function countJobsByState(q: Queryable): Promise<Record<JobState, number>> {
  const res = await q.query<{ state: JobState; n: number }>(
    "select state, count(*)::int as n from jobs group by state",
  );
  const out = {
    queued: 0,
    assigned: 0,
    running: 0,
    canceling: 0,
    succeeded: 0,
    failed: 0,
    canceled: 0,
    timed_out: 0,
  } satisfies Record<JobState, number>;
  for (const r of res.rows) out[r.state] = Number(r.n);
  return out;
}

export interface ClaimedJob {
  job: Job;
  epoch: number;
  attempt: number;
}

/**
 * Hands up to `max` of the oldest queued jobs of the given queues to one agent. `skip locked` lets
 * concurrent claimers pass over rows another transaction is taking, so no job is handed out twice
 * and nobody waits. Each claim bumps the lease epoch and the attempt.
 */
export async function claimJobs(
  q: Queryable,
  input: { agentId: string; queues: string[]; max: number },
): Promise<ClaimedJob[]> {
  if (input.max <= 0 || input.queues.length === 0) return [];
  // Per queue, so each scan walks jobs_queued_idx (queue, created_at, id) in order and reads only
  // the rows it takes. `queue = any($1)` could not use that order: with a fresh backlog the
  // planner sorted every queued job on each claim (12.8 ms a claim with 10,000 queued, found with
  // pg_stat_statements under the protocol bench). With several queues, a few rows beyond `max`
  // stay locked until this statement commits; other claimers skip them meanwhile.
  // One statement, so it is its own transaction: one round trip instead of begin/claim/commit.
  // `relaxed` sets synchronous_commit off for that implicit transaction only (see
  // sql/relaxed.ts for why a claim may be lost in a crash). Never call it inside a
  // transaction whose other writes must be durable: the setting would cover the whole transaction.
  const res = await q.query(
    `with ${RELAXED_CTE},
     picked as (
       select c.id
         from unnest($1::text[]) as q(name)
        cross join lateral (
          select id, created_at from jobs
           where state = 'queued' and queue = q.name
           order by created_at, id
           limit $2
           for update skip locked
        ) c
        order by c.created_at, c.id
        limit $2
     ),
     claimed as (
       update jobs j
          set state = 'assigned', agent_id = $3, epoch = j.epoch + 1, attempt = j.attempt + 1, assigned_at = now()
         from picked, relaxed
        where j.id = picked.id and relaxed.v is not null
       returning j.*
     ),
     -- The claim's events, in the same statement (and as durable as the claim itself).
     told as (
       insert into events (name, payload)
       select 'job.state', ${jobStateSql("c", "null")} from claimed c order by c.created_at, c.id
     )
     select * from claimed`,
    [input.queues, input.max, input.agentId],
  );
  return res.rows
    .map(toJob)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
    .map((job) => ({ job, epoch: job.epoch, attempt: job.attempt }));
}

/**
 * Per bucket of `bucketSeconds`, the `buckets` ending now (oldest first): jobs finished in it, how
 * many succeeded, and jobs waiting in a queue at its end (created by then, not yet assigned, not
 * ended). Reads only the jobs that were live or ended in the window.
 */
export async function jobHistory(
  q: Queryable,
  bucketSeconds: number,
  buckets: number,
  now = Date.now(),
): Promise<{ at: string; finished: number; succeeded: number; queued: number }[]> {
  const span = bucketSeconds * 1000;
  const last = Math.floor(now / span) * span;
  const first = last - (buckets - 1) * span;
  const res = await q.query<{
    state: string;
    created_at: Date;
    assigned_at: Date | null;
    finished_at: Date | null;
  }>(
    `select state, created_at, assigned_at, finished_at from jobs
      where state = 'queued' or finished_at >= $1 or assigned_at >= $1 or created_at >= $1`,
    [new Date(first)],
  );
  const out = Array.from({ length: buckets }, (_, i) => ({
    at: new Date(first + i * span).toISOString(),
    finished: 0,
    succeeded: 0,
    queued: 0,
  }));
  const ms = (d: Date | string | null) => (d === null ? null : new Date(d).getTime());
  for (const row of res.rows) {
    const created = ms(row.created_at) ?? 0;
    const assigned = ms(row.assigned_at);
    const finished = ms(row.finished_at);
    if (finished !== null && finished >= first) {
      const b = out[Math.min(buckets - 1, Math.floor((finished - first) / span))];
      if (b) {
        b.finished++;
        if (row.state === "succeeded") b.succeeded++;
      }
    }
    for (let i = 0; i < buckets; i++) {
      const end = first + (i + 1) * span;
      const waiting =
        created <= end && (assigned === null || assigned > end) && (finished === null || finished > end);
      const bucket = out[i];
      if (waiting && bucket) bucket.queued++;
    }
  }
  return out;
}
