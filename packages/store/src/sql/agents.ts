import {
  type Agent,
  type AgentActivity,
  type AgentResources,
  Labels,
  type SandboxKind,
  type TokenScope,
} from "@skiff/protocol";
import type { Queryable } from "../db.ts";
import { scopeOf, toAgent } from "../rows.ts";
import { LIVE_SQL, LIVE_STATES } from "./live.ts";
import { RELAXED_CTE } from "./relaxed.ts";

const AGENT_COLUMNS = `a.*, coalesce((select array_agg(j.id order by j.assigned_at) from jobs j
  where j.agent_id = a.id and j.state in ${LIVE_SQL}), '{}') as running_jobs`;

export async function insertAgent(
  q: Queryable,
  input: {
    id: string;
    name: string;
    version: string;
    slots: number;
    labels: Labels;
    queues: string[];
    sandbox: SandboxKind;
    resources: AgentResources;
    tokenId: string | null;
    /** SHA-256 of the agent's own credential. */
    credentialHash: string | null;
  },
): Promise<Agent> {
  await q.query(
    `insert into agents (id, name, version, slots, labels, queues, sandbox, resources, token_id, credential_hash)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      input.id,
      input.name,
      input.version,
      input.slots,
      JSON.stringify(input.labels),
      input.queues,
      input.sandbox,
      JSON.stringify(input.resources),
      input.tokenId,
      input.credentialHash,
    ],
  );
  const agent = await getAgent(q, input.id);
  if (!agent) throw new Error("agent vanished after insert");
  return agent;
}

export async function getAgent(q: Queryable, id: string): Promise<Agent | null> {
  const res = await q.query(`select ${AGENT_COLUMNS} from agents a where a.id = $1`, [id]);
  const row = res.rows[0];
  return row ? toAgent(row) : null;
}

export async function listAgents(q: Queryable, opts: { includeOffline?: boolean } = {}): Promise<Agent[]> {
  const res = await q.query(
    `select ${AGENT_COLUMNS} from agents a ${opts.includeOffline === false ? "where a.status = 'online'" : ""}
     order by a.status desc, a.name, a.id`,
  );
  const now = Date.now();
  return res.rows.map((r) => toAgent(r, now));
}

export interface HeartbeatRow {
  id: string;
  status: "online" | "offline";
  drainRequested: boolean;
  drainReason: string | null;
  /** The activity before this heartbeat, to tell whether it changed. */
  previousActivity: AgentActivity;
}

export interface HeartbeatInput {
  agentId: string;
  activity: AgentActivity;
  resources: AgentResources;
  running: { jobId: string; epoch: number }[];
}

export type Cancel = { jobId: string; epoch: number; reason: string };

/** At most one `agent.heartbeat` event per agent this often, unless something changed. */
export const HEARTBEAT_EVENT_EVERY_S = 2;

/**
 * Records a batch of heartbeats (one per agent) in one statement; an agent the reaper had marked
 * offline comes back online. Rows are locked in id order so concurrent batches cannot deadlock.
 * Not for use inside a transaction whose other writes must be durable (see the relaxed CTE).
 * Returns, per input, the agent's drain state and the jobs it should stop (canceled by an operator,
 * or no longer its lease), or null for an unknown agent.
 */
export async function recordHeartbeats(
  q: Queryable,
  inputs: HeartbeatInput[],
): Promise<((HeartbeatRow & { cancels: Cancel[] }) | null)[]> {
  if (inputs.length === 0) return [];
  const ids = inputs.map((i) => i.agentId);
  const reported = inputs.flatMap((i) => i.running.map((r) => r.jobId));
  // Two statements sent together, each its own transaction: the write (committed without waiting
  // for the WAL, see sql/relaxed.ts) and the read of what each agent should stop. The
  // read may miss a cancel committed in the same instant; the next heartbeat carries it.
  const [res, jobsRes] = await Promise.all([
    q.query<{
      id: string;
      status: "online" | "offline";
      drain_requested: boolean;
      drain_reason: string | null;
      previous_activity: AgentActivity;
    }>(
      `with ${RELAXED_CTE},
       prev as (
         select id, activity as previous_activity, status as previous_status,
                (heartbeat_told_at is null or heartbeat_told_at < now() - interval '${HEARTBEAT_EVENT_EVERY_S} seconds') as due
           from agents where id = any($1::text[]) order by id for update
       ),
       beat as (
         update agents a set last_heartbeat_at = now(), status = 'online', activity = v.activity, resources = v.resources,
                heartbeat_told_at = case
                  when prev.due or prev.previous_activity is distinct from v.activity
                    or prev.previous_status <> 'online' then now()
                  else a.heartbeat_told_at end
           from unnest($1::text[], $2::text[], $3::jsonb[], $4::int[]) as v(id, activity, resources, running), prev, relaxed
          where a.id = v.id and prev.id = v.id and relaxed.v is not null
          returning a.id, a.status, a.activity, a.resources, a.drain_requested, a.drain_reason, prev.previous_activity,
                    v.running, (a.heartbeat_told_at = now()) as told
       ),
       -- A heartbeat is an event in the same statement when it says something: the activity
       -- changed, the agent came back, or the last one told is HEARTBEAT_EVENT_EVERY_S old. An agent
       -- heartbeating many times a second does not flood the log with samples.
       told as (
         insert into events (name, payload)
         select e.name, e.payload from (
           select beat.id, 0 as k, 'agent.heartbeat' as name, jsonb_build_object(
                    'agentId', beat.id, 'activity', beat.activity, 'running', beat.running,
                    'resources', beat.resources,
                    'at', to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) as payload
             from beat where beat.told
           union all
           select beat.id, 1, 'agent.status', jsonb_build_object(
                    'agentId', beat.id, 'status', 'online', 'activity', beat.activity)
             from beat where beat.previous_activity is distinct from beat.activity
         ) e order by e.id, e.k
       )
       select id, status, drain_requested, drain_reason, previous_activity from beat`,
      [
        ids,
        inputs.map((i) => i.activity),
        inputs.map((i) => JSON.stringify(i.resources)),
        inputs.map((i) => i.running.length),
      ],
    ),
    q.query<{
      kind: "canceling" | "reported";
      id: string;
      epoch: number;
      cancel_reason: string | null;
      agent_id: string | null;
      state: string;
    }>(
      `select 'canceling' as kind, id, epoch, cancel_reason, agent_id, state
         from jobs where agent_id = any($1::text[]) and state = 'canceling'
       union all
       select 'reported', id, epoch, null, agent_id, state from jobs where id = any($2::text[])`,
      [ids, reported],
    ),
  ]);
  const rows = new Map(res.rows.map((r) => [r.id, r]));
  const canceling = jobsRes.rows.filter((r) => r.kind === "canceling");
  const jobs = new Map(jobsRes.rows.filter((r) => r.kind === "reported").map((r) => [r.id, r]));
  return inputs.map((input) => {
    const row = rows.get(input.agentId);
    if (!row) return null;
    const cancels: Cancel[] = canceling
      .filter((r) => r.agent_id === input.agentId)
      .map((r) => ({ jobId: r.id, epoch: Number(r.epoch), reason: r.cancel_reason ?? "canceled" }));
    for (const lease of input.running) {
      const job = jobs.get(lease.jobId);
      const held =
        job &&
        job.agent_id === input.agentId &&
        Number(job.epoch) === lease.epoch &&
        LIVE_STATES.has(job.state);
      if (!held) cancels.push({ jobId: lease.jobId, epoch: lease.epoch, reason: "lease_lost" });
    }
    return {
      id: row.id,
      status: row.status,
      drainRequested: row.drain_requested,
      drainReason: row.drain_reason,
      previousActivity: row.previous_activity,
      cancels,
    };
  });
}

export async function requestDrain(q: Queryable, agentId: string, reason: string): Promise<Agent | null> {
  const res = await q.query(
    "update agents set drain_requested = true, drain_reason = $2 where id = $1 returning id",
    [agentId, reason],
  );
  if (res.rowCount === 0) return null;
  return getAgent(q, agentId);
}

/** Offline, and its own credential is gone with it: a worker that comes back registers again. */
export async function markAgentOffline(
  q: Queryable,
  agentId: string,
  activity: AgentActivity = "idle",
): Promise<boolean> {
  const res = await q.query(
    "update agents set status = 'offline', activity = $2, credential_hash = null where id = $1 and status = 'online'",
    [agentId, activity],
  );
  return res.rowCount > 0;
}

/**
 * Marks every online agent silent for longer than `offlineAfterMs` offline, ending its credential,
 * and returns their ids.
 */
export async function markSilentAgentsOffline(q: Queryable, offlineAfterMs: number): Promise<string[]> {
  const res = await q.query<{ id: string }>(
    `update agents set status = 'offline', credential_hash = null
      where status = 'online' and last_heartbeat_at < now() - make_interval(secs => $1::double precision / 1000)
      returning id`,
    [offlineAfterMs],
  );
  return res.rows.map((r) => r.id);
}

/** Removes offline agents that have been gone for longer than the retention. */
export async function pruneOfflineAgents(q: Queryable, retentionSeconds: number): Promise<number> {
  const res = await q.query(
    `delete from agents a where a.status = 'offline'
        and a.last_heartbeat_at < now() - make_interval(secs => $1)
        and not exists (select 1 from jobs j where j.agent_id = a.id and j.state in ${LIVE_SQL})`,
    [retentionSeconds],
  );
  return res.rowCount;
}

/**
 * What the API checks on every agent call: who registered it, what it serves, whether it drains,
 * and the registering token's scope as it stands now (not as it stood at registration).
 */
export interface AgentLease {
  id: string;
  name: string;
  tokenId: string | null;
  queues: string[];
  labels: Labels;
  tokenScope: TokenScope | null;
  status: "online" | "offline";
  drainRequested: boolean;
}

export async function getAgentLease(q: Queryable, id: string): Promise<AgentLease | null> {
  const res = await q.query<{
    id: string;
    name: string;
    token_id: string | null;
    queues: string[];
    labels: unknown;
    token_scope: unknown;
    status: "online" | "offline";
    drain_requested: boolean;
  }>(
    `select a.id, a.name, a.token_id, a.queues, a.labels, t.scope as token_scope, a.status, a.drain_requested
       from agents a left join tokens t on t.id = a.token_id where a.id = $1`,
    [id],
  );
  const r = res.rows[0];
  if (!r) return null;
  return {
    id: r.id,
    name: r.name,
    tokenId: r.token_id,
    queues: r.queues,
    labels: Labels.parse(r.labels),
    tokenScope: scopeOf(r.token_scope),
    status: r.status,
    drainRequested: r.drain_requested,
  };
}

export async function countAgents(q: Queryable): Promise<Record<string, number>> {
  const res = await q.query<{ k: string; n: number }>(
    "select case when status = 'offline' then 'offline' else activity end as k, count(*)::int as n from agents group by 1",
  );
  const out: Record<string, number> = { idle: 0, busy: 0, draining: 0, degraded: 0, offline: 0 };
  for (const r of res.rows) out[r.k] = Number(r.n);
  return out;
}
