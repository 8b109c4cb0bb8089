import type { JobEvent, LogLine, Outcome } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { JOB_HEAD_COLUMNS, type JobHead, toJobHead } from "../rows.ts";
import { jobStateSql } from "./events.ts";
import { LIVE_SQL, LIVE_STATES } from "./live.ts";

export const TRUNCATION_MARKER = "[log truncated]";
/** Bytes of Skiff's own log lines stored past a job's log cap. */
export const SYSTEM_LINES_SLACK = 1024 * 1024;

/** Why a lease-holding call changed nothing. */
export type LeaseRefusal = "not_found" | "lease_lost" | "already_final";

/**
 * Locks the job and checks the caller still holds its lease: same agent, same epoch, job not final.
 * A stale epoch wins over "already final": a worker that lost its lease must stop either way.
 */
async function lockLease(
  q: Queryable,
  jobId: string,
  agentId: string,
  epoch: number,
): Promise<
  { ok: true; job: JobHead; capped: boolean } | { ok: false; reason: LeaseRefusal; job: JobHead | null }
> {
  const res = await q.query(`select ${JOB_HEAD_COLUMNS}, log_capped from jobs where id = $1 for update`, [
    jobId,
  ]);
  const row = res.rows[0];
  if (!row) return { ok: false, reason: "not_found", job: null };
  const job = toJobHead(row);
  return checkLease(job, agentId, epoch) ?? { ok: true, job, capped: row.log_capped === true };
}

/** Why the caller does not hold the lease on `job`, or null when it does. */
function checkLease(
  job: JobHead,
  agentId: string,
  epoch: number,
): { ok: false; reason: LeaseRefusal; job: JobHead } | null {
  if (job.agentId !== agentId || job.epoch !== epoch) return { ok: false, reason: "lease_lost", job };
  if (!LIVE_STATES.has(job.state)) return { ok: false, reason: "already_final", job };
  return null;
}

export type EventsResult =
  | { ok: true; job: JobHead; cancel: boolean; lines: LogLine[]; startedNow: boolean }
  | { ok: false; reason: LeaseRefusal; job: JobHead | null };

/**
 * Applies a batch of step events and log chunks from the lease holder. Idempotent on log seq: a
 * retried batch inserts nothing twice. Past `logCapBytes` one truncation marker is stored and the
 * remaining lines are dropped while the job goes on.
 */
export async function appendEvents(
  q: Queryable,
  input: { jobId: string; agentId: string; epoch: number; events: JobEvent[]; logCapBytes: number },
): Promise<EventsResult> {
  const lease = await lockLease(q, input.jobId, input.agentId, input.epoch);
  if (!lease.ok) return lease;
  let job = lease.job;
  let startedNow = false;
  if (job.state === "assigned") {
    const res = await q.query(
      `update jobs set state = 'running', started_at = now() where id = $1 returning ${JOB_HEAD_COLUMNS}`,
      [job.id],
    );
    const row = res.rows[0];
    // Stryker disable next-line ConditionalExpression: the UPDATE ... RETURNING of a row locked just above always returns it
    if (row) job = toJobHead(row);
    startedNow = true;
  }

  const lines: LogLine[] = [];
  let bytes = job.logBytes;
  // Whether the API has cut this job's log at its cap: from then on no more output lines.
  let capped = lease.capped;
  // Whether a worker's truncation marker is in this batch.
  let marked = false;
  const seqs: number[] = [];
  const steps: (number | null)[] = [];
  const streams: string[] = [];
  const stamps: string[] = [];
  const texts: string[] = [];
  const push = (line: LogLine) => {
    seqs.push(line.seq);
    steps.push(line.step);
    streams.push(line.stream);
    stamps.push(line.ts);
    texts.push(line.text);
  };

  for (const ev of input.events) {
    const ts =
      ev.ts && !Number.isNaN(Date.parse(ev.ts)) ? new Date(ev.ts).toISOString() : new Date().toISOString();
    if (ev.type === "step.started") {
      await q.query(
        "update job_steps set state = 'running', started_at = coalesce(started_at, $3) where job_id = $1 and idx = $2",
        [job.id, ev.step, ts],
      );
    } else if (ev.type === "step.finished") {
      await q.query(
        `update job_steps set state = $3, exit_code = $4, finished_at = coalesce(finished_at, $5),
                started_at = coalesce(started_at, $5)
          where job_id = $1 and idx = $2`,
        [job.id, ev.step, ev.outcome, ev.exitCode, ts],
      );
    } else {
      const size = Buffer.byteLength(ev.text);
      // The worker keeps a job within the cap itself (head, marker, tail); this is the API's own
      // limit for a worker that does not. Skiff's own lines (a step's result, a worker's
      // truncation marker) get a little room past it, so that how a step ended is always stored.
      if (ev.stream === "system") {
        if (bytes + size > input.logCapBytes + SYSTEM_LINES_SLACK) continue;
        if (ev.omitted) marked = true;
      } else if (capped) {
        continue;
      } else if (bytes + size > input.logCapBytes) {
        capped = true;
        push({ seq: ev.seq, step: ev.step, stream: "system", ts, text: TRUNCATION_MARKER });
        continue;
      }
      bytes += size;
      push({ seq: ev.seq, step: ev.step, stream: ev.stream, ts, text: ev.text });
    }
  }

  // Stryker disable next-line ConditionalExpression,EqualityOperator: only skips a round trip; an INSERT of empty arrays inserts nothing
  if (seqs.length > 0) {
    const res = await q.query<{ seq: number; size: number }>(
      `insert into job_logs (job_id, seq, step, stream, ts, text)
       select $1, l.seq, l.step, l.stream, l.ts, l.text
         from unnest($2::bigint[], $3::int[], $4::text[], $5::timestamptz[], $6::text[]) as l(seq, step, stream, ts, text)
       on conflict (job_id, seq) do nothing
       returning seq, octet_length(text) as size`,
      [job.id, seqs, steps, streams, stamps, texts],
    );
    const inserted = new Set(res.rows.map((r) => Number(r.seq)));
    let added = 0;
    // Stryker disable next-line EqualityOperator: one step past the end reads undefined and is skipped by the check below
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      // Stryker disable next-line ConditionalExpression: the arrays are filled together, so seq is never undefined inside the bounds
      if (seq === undefined || !inserted.has(seq)) continue;
      // Stryker disable next-line StringLiteral: unreachable fallback (the arrays are filled together)
      const text = texts[i] ?? "";
      if (streams[i] !== "system" || text !== TRUNCATION_MARKER) added += Buffer.byteLength(text);
      lines.push({
        seq,
        step: steps[i] ?? null,
        stream: streams[i] as LogLine["stream"],
        // Stryker disable next-line StringLiteral: unreachable fallback (the arrays are filled together)
        ts: stamps[i] ?? "",
        text,
      });
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: only skips a round trip; with nothing inserted the flags it would set are already set (the marker is itself a row)
    if (inserted.size > 0) {
      await q.query(
        `update jobs set log_bytes = log_bytes + $2, log_capped = log_capped or $3,
                log_truncated = log_truncated or $3 or $4
          where id = $1`,
        [job.id, added, capped, marked],
      );
    }
  }
  return { ok: true, job, cancel: job.state === "canceling", lines, startedNow };
}

export type FinishResult =
  | { ok: true; job: JobHead }
  | { ok: false; reason: LeaseRefusal; job: JobHead | null };

export interface FinishInput {
  jobId: string;
  agentId: string;
  epoch: number;
  outcome: Outcome;
  exitCode: number | null;
  error?: string;
}

/**
 * Records the final outcomes of a batch of jobs from their lease holders. Each input is checked on
 * its own: a stale epoch or a final job changes nothing and gets its refusal, the others are
 * written. One statement per round (so one round trip and one commit for a whole batch): the
 * lease check sits in the UPDATE's own WHERE, which PostgreSQL re-evaluates against the newest row
 * version when a concurrent writer (the reaper, a cancel) got there first. A job named twice in one
 * batch goes in a second round and so sees the first outcome, as it would one batch later.
 */
export async function finishJobs(q: Queryable, inputs: FinishInput[]): Promise<FinishResult[]> {
  const results: FinishResult[] = new Array(inputs.length);
  let left = inputs.map((input, index) => ({ input, index }));
  while (left.length > 0) {
    const seen = new Set<string>();
    const round: typeof left = [];
    const later: typeof left = [];
    for (const entry of left) {
      if (seen.has(entry.input.jobId)) later.push(entry);
      else {
        seen.add(entry.input.jobId);
        round.push(entry);
      }
    }
    const res = await q.query(
      `with f as (
         select * from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::text[])
           as f(id, agent_id, epoch, outcome, exit_code, error)
       ),
       done as (
         update jobs j set state = f.outcome, exit_code = f.exit_code, error = f.error, finished_at = now(),
                started_at = coalesce(j.started_at, now())
           from f
          where j.id = f.id and j.agent_id = f.agent_id and j.epoch = f.epoch
            and j.state in ${LIVE_SQL}
         returning ${JOB_HEAD_COLUMNS.replace(/(\w+)/g, "j.$1")}
       ),
       steps as (
         update job_steps s set state = case when s.state = 'running' then done.state else 'skipped' end,
                finished_at = coalesce(s.finished_at, now())
           from done
          where s.job_id = done.id and s.state in ('pending', 'running')
       ),
       told as (
         insert into events (name, payload)
         select 'job.state', ${jobStateSql("done", "done.error")} from done order by done.id
       )
       select done.*, f.id as input_id, (old.id is not null) as found, old.state as old_state,
              (old.agent_id is not distinct from f.agent_id and old.epoch = f.epoch) as holder
         from f
         left join done on done.id = f.id
         left join jobs old on old.id = f.id`,
      [
        round.map((e) => e.input.jobId),
        round.map((e) => e.input.agentId),
        round.map((e) => e.input.epoch),
        round.map((e) => e.input.outcome),
        round.map((e) => e.input.exitCode),
        round.map((e) => e.input.error ?? null),
      ],
    );
    const byId = new Map(res.rows.map((row) => [String(row.input_id), row]));
    for (const { input, index } of round) {
      const row = byId.get(input.jobId);
      // Stryker disable next-line ConditionalExpression: the driver gives SQL NULL as null, never undefined
      if (row && row.id !== null && row.id !== undefined) results[index] = { ok: true, job: toJobHead(row) };
      else if (!row?.found) results[index] = { ok: false, reason: "not_found", job: null };
      else if (row.holder && !LIVE_STATES.has(String(row.old_state)))
        results[index] = { ok: false, reason: "already_final", job: null };
      // A stale holder, or one whose live row changed under this statement (the reaper requeued it,
      // say): either way the lease has moved on.
      else results[index] = { ok: false, reason: "lease_lost", job: null };
    }
    left = later;
  }
  return results;
}
