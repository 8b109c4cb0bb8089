import { attemptSeqBase, type Job, type LogLine } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { toJob, toLogLine } from "../rows.ts";
import { getJob } from "./jobs.ts";
import { LIVE_SQL } from "./live.ts";

export type CancelResult =
  | { ok: true; job: Job; changed: boolean }
  | { ok: false; reason: "not_found" | "invalid_transition"; job: Job | null };

/**
 * Cancels a job: a queued one at once (its epoch bumped so no claim can still run it), an assigned or
 * running one by moving it to `canceling`, which the worker learns from its next heartbeat or upload.
 */
export async function cancelJob(
  q: Queryable,
  input: { jobId: string; reason: string },
): Promise<CancelResult> {
  const job = await getJob(q, input.jobId, { forUpdate: true });
  if (!job) return { ok: false, reason: "not_found", job: null };
  if (job.state === "canceling") return { ok: true, job, changed: false };
  if (job.state !== "queued" && job.state !== "assigned" && job.state !== "running") {
    return { ok: false, reason: "invalid_transition", job };
  }
  const sql =
    job.state === "queued"
      ? `update jobs set state = 'canceled', cancel_reason = $2, epoch = epoch + 1, finished_at = now()
          where id = $1 returning *`
      : "update jobs set state = 'canceling', cancel_reason = $2 where id = $1 returning *";
  const res = await q.query(sql, [input.jobId, input.reason]);
  if (job.state === "queued") {
    await q.query("update job_steps set state = 'canceled' where job_id = $1 and state = 'pending'", [
      input.jobId,
    ]);
  }
  const row = res.rows[0];
  if (!row) return { ok: false, reason: "not_found", job: null };
  return { ok: true, job: toJob(row), changed: true };
}

export async function listLogs(
  q: Queryable,
  input: { jobId: string; afterSeq: number; limit: number },
): Promise<LogLine[]> {
  const res = await q.query("select * from job_logs where job_id = $1 and seq > $2 order by seq limit $3", [
    input.jobId,
    input.afterSeq,
    input.limit,
  ]);
  return res.rows.map(toLogLine);
}

export interface RequeueOutcome {
  requeued: Job[];
  failed: Job[];
  canceled: Job[];
}

/**
 * Takes back the live jobs of agents that went silent: each goes back to the queue with its epoch
 * bumped while attempts remain, else fails with `agent_lost`; a job being canceled ends canceled.
 * Each job's log gets one system line saying how that attempt ended and why (`why`: what happened
 * to its worker), at the seq between that attempt's lines and the next one's.
 */
export async function requeueJobsOfAgents(
  q: Queryable,
  agentIds: string[],
  why = "its worker was lost",
): Promise<RequeueOutcome> {
  const out: RequeueOutcome = { requeued: [], failed: [], canceled: [] };
  if (agentIds.length === 0) return out;
  const res = await q.query(
    `with taken as (
       select j.id, a.name as worker
         from jobs j left join agents a on a.id = j.agent_id
        where j.agent_id = any($1::text[]) and j.state in ${LIVE_SQL}
        for update of j
     )
     update jobs set
        state = case when state = 'canceling' then 'canceled'
                     when attempt < max_attempts then 'queued' else 'failed' end,
        error = case when state <> 'canceling' and attempt >= max_attempts then 'agent_lost' else error end,
        finished_at = case when state = 'canceling' or attempt >= max_attempts then now() else null end,
        agent_id = case when state <> 'canceling' and attempt < max_attempts then null else agent_id end,
        assigned_at = case when state <> 'canceling' and attempt < max_attempts then null else assigned_at end,
        started_at = case when state <> 'canceling' and attempt < max_attempts then null else started_at end,
        epoch = epoch + 1
       from taken
      where jobs.id = taken.id
      returning jobs.*, taken.worker`,
    [agentIds],
  );
  const notes: { id: string; seq: number; text: string }[] = [];
  for (const row of res.rows) {
    const job = toJob(row);
    const worker = typeof row.worker === "string" ? ` (${row.worker})` : "";
    const then =
      job.state === "queued"
        ? `attempt ${job.attempt + 1} queued`
        : job.state === "canceled"
          ? "the job is canceled, as was asked"
          : `no attempts left: failed (agent_lost)`;
    notes.push({
      id: job.id,
      seq: attemptSeqBase(job.attempt + 1),
      text: `--- attempt ${job.attempt} of ${job.maxAttempts} interrupted: ${why}${worker}; ${then}`,
    });
    if (job.state === "queued") out.requeued.push(job);
    else if (job.state === "canceled") out.canceled.push(job);
    else out.failed.push(job);
  }
  if (notes.length > 0) {
    await q.query(
      `insert into job_logs (job_id, seq, step, stream, ts, text)
       select n.id, n.seq, null, 'system', now(), n.text
         from unnest($1::text[], $2::bigint[], $3::text[]) as n(id, seq, text)
       on conflict (job_id, seq) do nothing`,
      [notes.map((n) => n.id), notes.map((n) => n.seq), notes.map((n) => n.text)],
    );
  }
  if (out.requeued.length > 0) {
    await q.query(
      `update job_steps set state = 'pending', exit_code = null, started_at = null, finished_at = null
        where job_id = any($1::text[])`,
      [out.requeued.map((j) => j.id)],
    );
  }
  return out;
}

/** The backstop for jobs whose worker did not stop them in time: time them out after a grace. */
export async function timeOutOverdueJobs(q: Queryable, graceSeconds: number): Promise<Job[]> {
  const res = await q.query(
    `update jobs set state = 'timed_out', error = 'timeout', finished_at = now(), epoch = epoch + 1
      where state in ${LIVE_SQL}
        and coalesce(started_at, assigned_at) + make_interval(secs => timeout_seconds + $1) < now()
      returning *`,
    [graceSeconds],
  );
  return res.rows.map(toJob);
}

/** Deletes log lines of finished jobs older than the retention; returns how many went. */
export async function deleteExpiredLogs(q: Queryable, retentionSeconds: number): Promise<number> {
  const res = await q.query(
    `delete from job_logs l using jobs j
      where l.job_id = j.id and j.finished_at is not null
        and j.finished_at < now() - make_interval(secs => $1)`,
    [retentionSeconds],
  );
  return res.rowCount;
}
