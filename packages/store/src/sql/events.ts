import type { SkiffEvent } from "@skiff/protocol";
import type { Queryable } from "../db.ts";

/** An event as the log keeps it: its global position, name, payload and commit-side time. */
export interface StoredEvent {
  seq: number;
  name: string;
  payload: unknown;
  /** The payload as the database prints it (JSON on one line), for relaying without re-encoding. */
  payloadText: string;
  at: string;
}

/**
 * The SQL expression of a `job.state` payload for the jobs row (or CTE row) `alias`: the same
 * function whichever statement changed the job.
 */
export function jobStateSql(alias: string, reason: string): string {
  const c = (col: string) => `${alias}.${col}`;
  return `skiff_job_state(${c("id")}, ${c("state")}, ${c("queue")}, ${c("agent_id")}, ${c("epoch")}, ${c("attempt")}, ${c("max_attempts")}, ${c("exit_code")}, ${reason}, ${c("started_at")}, ${c("finished_at")})`;
}

/** Records events in the caller's transaction, in the order given. */
export async function recordEvents(q: Queryable, events: readonly SkiffEvent[]): Promise<void> {
  if (events.length === 0) return;
  await q.query(
    `insert into events (name, payload)
     select e.name, e.payload from unnest($1::text[], $2::jsonb[]) with ordinality as e(name, payload, n)
      order by e.n`,
    [events.map((e) => e.name), events.map((e) => JSON.stringify(e.payload))],
  );
}

/** Records a `job.state` event for each job, as it stands in this transaction, in the order given. */
export async function recordJobStates(
  q: Queryable,
  jobs: readonly { id: string; reason?: string | null }[],
): Promise<void> {
  if (jobs.length === 0) return;
  await q.query(
    `insert into events (name, payload)
     select 'job.state', ${jobStateSql("j", "r.reason")}
       from unnest($1::text[], $2::text[]) with ordinality as r(id, reason, n)
       join jobs j on j.id = r.id
      order by r.n`,
    [jobs.map((j) => j.id), jobs.map((j) => j.reason ?? null)],
  );
}

/**
 * Gives committed, unnumbered events the next positions (see `skiff_number_events` in the
 * migration): one statement, so one round trip; no lock at all when nothing waits. Returns the
 * highest position handed out, 0 when there was nothing to number, or -1 when another caller was
 * numbering at that moment (look again shortly).
 */
export async function numberEvents(q: Queryable, batch = 5000): Promise<number> {
  const res = await q.query<{ last: number | string | null }>("select skiff_number_events($1) as last", [
    batch,
  ]);
  return Number(res.rows[0]?.last ?? 0);
}

/** Numbered events after `seq`, in order. */
export async function eventsAfter(q: Queryable, seq: number, limit: number): Promise<StoredEvent[]> {
  const res = await q.query<{ seq: number | string; name: string; payload: string; at: Date | string }>(
    "select seq, name, payload::text as payload, at from events where seq > $1 order by seq limit $2",
    [seq, limit],
  );
  return res.rows.map((r) => {
    let parsed: unknown;
    let done = false;
    return {
      seq: Number(r.seq),
      name: r.name,
      payloadText: r.payload,
      // Parsed only when asked: the relay sends the text as it is.
      get payload() {
        if (!done) {
          parsed = JSON.parse(r.payload);
          done = true;
        }
        return parsed;
      },
      at: new Date(r.at).toISOString(),
    };
  });
}

/** The oldest and newest position still kept (first > last when none is kept). */
export async function eventBounds(q: Queryable): Promise<{ first: number; last: number }> {
  const res = await q.query<{ first: number | string | null; last: number | string }>(
    "select (select min(seq) from events) as first, (select last from event_counter where id = 1) as last",
  );
  const last = Number(res.rows[0]?.last ?? 0);
  const first = res.rows[0]?.first;
  return { first: first === null || first === undefined ? last + 1 : Number(first), last };
}

/** Forgets numbered events older than `keepSeconds`, always keeping the newest `keepAtLeast`. */
export async function pruneEvents(q: Queryable, keepSeconds: number, keepAtLeast = 1000): Promise<number> {
  const res = await q.query(
    `delete from events
      where seq is not null and at < now() - make_interval(secs => $1::double precision)
        and seq <= (select last from event_counter where id = 1) - $2`,
    [keepSeconds, keepAtLeast],
  );
  return res.rowCount;
}
