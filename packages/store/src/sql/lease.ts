import type { Job, JobEvent, LogLine, Outcome } from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { toJob } from "../rows.ts";
import { getJob } from "./jobs.ts";

export const TRUNCATION_MARKER = "[log truncated]";

/** Why a lease-holding call changed nothing. */
export type LeaseRefusal = "not_found" | "lease_lost" | "already_final";

const LIVE = new Set(["assigned", "running", "canceling"]);

/**
 * Locks the job and checks the caller still holds its lease: same agent, same epoch, job not final.
 * A stale epoch wins over "already final": a worker that lost its lease must stop either way.
 */
async function lockLease(
  q: Queryable,
  jobId: string,
  agentId: string,
  epoch: number,
): Promise<{ ok: true; job: Job } | { ok: false; reason: LeaseRefusal; job: Job | null }> {
  const job = await getJob(q, jobId, { forUpdate: true });
  if (!job) return { ok: false, reason: "not_found", job: null };
  if (job.agentId !== agentId || job.epoch !== epoch) return { ok: false, reason: "lease_lost", job };
  if (!LIVE.has(job.state)) return { ok: false, reason: "already_final", job };
  return { ok: true, job };
}

export type EventsResult =
  | { ok: true; job: Job; cancel: boolean; lines: LogLine[]; startedNow: boolean }
  | { ok: false; reason: LeaseRefusal; job: Job | null };

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
      "update jobs set state = 'running', started_at = now() where id = $1 returning *",
      [job.id],
    );
    const row = res.rows[0];
    if (row) job = toJob(row);
    startedNow = true;
  }

  const lines: LogLine[] = [];
  let bytes = job.logBytes;
  let truncated =
    (await q.query<{ t: boolean }>("select log_truncated as t from jobs where id = $1", [job.id])).rows[0]
      ?.t === true;
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
      if (truncated) continue;
      const size = Buffer.byteLength(ev.text);
      if (bytes + size > input.logCapBytes) {
        truncated = true;
        push({ seq: ev.seq, step: ev.step, stream: "system", ts, text: TRUNCATION_MARKER });
        continue;
      }
      bytes += size;
      push({ seq: ev.seq, step: ev.step, stream: ev.stream, ts, text: ev.text });
    }
  }

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
    for (let i = 0; i < seqs.length; i++) {
      const seq = seqs[i];
      if (seq === undefined || !inserted.has(seq)) continue;
      const text = texts[i] ?? "";
      if (streams[i] !== "system" || text !== TRUNCATION_MARKER) added += Buffer.byteLength(text);
      lines.push({
        seq,
        step: steps[i] ?? null,
        stream: streams[i] as LogLine["stream"],
        ts: stamps[i] ?? "",
        text,
      });
    }
    if (inserted.size > 0) {
      await q.query(
        "update jobs set log_bytes = log_bytes + $2, log_truncated = log_truncated or $3 where id = $1",
        [job.id, added, truncated],
      );
    }
  }
  return { ok: true, job, cancel: job.state === "canceling", lines, startedNow };
}

export type FinishResult = { ok: true; job: Job } | { ok: false; reason: LeaseRefusal; job: Job | null };

/** Records the final outcome from the lease holder; a stale epoch or a final job changes nothing. */
export async function finishJob(
  q: Queryable,
  input: {
    jobId: string;
    agentId: string;
    epoch: number;
    outcome: Outcome;
    exitCode: number | null;
    error?: string;
  },
): Promise<FinishResult> {
  const lease = await lockLease(q, input.jobId, input.agentId, input.epoch);
  if (!lease.ok) return lease;
  const res = await q.query(
    `update jobs set state = $2, exit_code = $3, error = $4, finished_at = now(),
            started_at = coalesce(started_at, now())
      where id = $1 returning *`,
    [input.jobId, input.outcome, input.exitCode, input.error ?? null],
  );
  await q.query(
    `update job_steps set state = case when state = 'running' then $2 else 'skipped' end,
            finished_at = coalesce(finished_at, now())
      where job_id = $1 and state in ('pending', 'running')`,
    [input.jobId, input.outcome === "succeeded" ? "succeeded" : input.outcome],
  );
  const row = res.rows[0];
  if (!row) return { ok: false, reason: "not_found", job: null };
  return { ok: true, job: toJob(row) };
}
