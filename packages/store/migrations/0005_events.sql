-- The event log: every change records its events in its own transaction (an outbox), so whatever
-- process made the change (an API replica, the reaper, the controller) its events cannot be lost
-- or told without the change. Writers insert rows with no `seq`; the API numbers committed rows in
-- one serialised step (see sql/events.ts), which gives every event one global, gap-free position
-- in commit order without making writers wait on each other.
create table events (
  id      bigserial primary key,
  seq     bigint unique,
  name    text not null,
  payload jsonb not null,
  at      timestamptz not null default now()
);
create index events_pending_idx on events (id) where seq is null;
create index events_at_idx on events (at) where seq is not null;

-- When this agent's last `agent.heartbeat` event was recorded: heartbeats sent many times a second
-- become an event at most every few seconds (sql/agents.ts).
alter table agents add column heartbeat_told_at timestamptz;

create table event_counter (
  id   integer primary key check (id = 1),
  last bigint not null
);
insert into event_counter (id, last) values (1, 0);

-- Writers do not NOTIFY in their own transactions (PostgreSQL serialises the commits of those that
-- do): the API process that wrote wakes its relay in-process, another process (the controller)
-- sends a NOTIFY after its commit, and the numbering below NOTIFYs every replica of each new range.

-- The `job.state` payload, built in SQL so that single-statement writes (claims, batched finishes)
-- record their events in the same statement. The one definition of that payload.
create function skiff_job_state(
  id text, state text, queue text, agent_id text, epoch integer, attempt integer,
  max_attempts integer, exit_code integer, reason text
) returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'jobId', id, 'state', state, 'queue', queue, 'agentId', agent_id, 'epoch', epoch,
    'attempt', attempt, 'maxAttempts', max_attempts, 'exitCode', exit_code
  ) || case when reason is null or reason = '' then '{}'::jsonb else jsonb_build_object('reason', reason) end
$$;

-- Numbers committed, unnumbered events, oldest row first, under a transaction lock so that ranges
-- are handed out and committed one after another: a reader never sees a position before the
-- positions below it are visible. One statement (one round trip); returns the highest position
-- handed out, 0 when nothing waited (then it takes no lock at all), or -1 when another replica holds
-- the lock: that one is numbering now, and the caller looks again a moment later rather than wait
-- behind its commit.
create function skiff_number_events(batch integer) returns bigint language plpgsql as $$
declare
  ids bigint[];
  n bigint;
  base bigint;
begin
  if not exists (select 1 from events where seq is null) then
    return 0;
  end if;
  if not pg_try_advisory_xact_lock(7270005) then
    return -1;
  end if;
  -- Read once, after the lock: what the previous holder numbered is committed and visible now.
  select array_agg(id order by id) into ids
    from (select id from events where seq is null order by id limit batch) p;
  n := coalesce(array_length(ids, 1), 0);
  if n = 0 then
    return 0;
  end if;
  update event_counter set last = last + n where id = 1 returning last - n into base;
  update events e set seq = base + u.k
    from unnest(ids) with ordinality as u(id, k)
   where e.id = u.id;
  perform pg_notify('skiff_events', (base + n)::text);
  return base + n;
end;
$$;
