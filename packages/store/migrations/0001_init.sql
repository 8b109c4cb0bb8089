-- Skiff schema v1: jobs, steps, logs, agents, tokens, fleet and the audit log.

create table jobs (
  id            text primary key,
  name          text not null,
  queue         text not null,
  state         text not null check (state in ('queued','assigned','running','canceling','succeeded','failed','canceled','timed_out')),
  spec          jsonb not null,
  attempt       integer not null default 0,
  max_attempts  integer not null,
  epoch         integer not null default 0,
  agent_id      text,
  exit_code     integer,
  error         text,
  cancel_reason text,
  created_by    text not null,
  created_at    timestamptz not null default now(),
  assigned_at   timestamptz,
  started_at    timestamptz,
  finished_at   timestamptz,
  timeout_seconds integer not null,
  log_bytes     bigint not null default 0,
  log_truncated boolean not null default false,
  retry_of      text references jobs(id)
);
-- The claim path: oldest queued job of a queue.
create index jobs_queued_idx on jobs (queue, created_at, id) where state = 'queued';
create index jobs_agent_idx on jobs (agent_id) where state in ('assigned','running','canceling');
create index jobs_created_idx on jobs (created_at desc, id desc);
create index jobs_state_idx on jobs (state, created_at desc);

create table job_steps (
  job_id      text not null references jobs(id) on delete cascade,
  idx         integer not null,
  name        text not null,
  state       text not null default 'pending',
  exit_code   integer,
  started_at  timestamptz,
  finished_at timestamptz,
  primary key (job_id, idx)
);

create table job_logs (
  job_id  text not null references jobs(id) on delete cascade,
  seq     bigint not null,
  step    integer,
  stream  text not null,
  ts      timestamptz not null,
  text    text not null,
  primary key (job_id, seq)
);
create index job_logs_ts_idx on job_logs (ts);

create table agents (
  id                text primary key,
  name              text not null,
  version           text not null,
  slots             integer not null,
  labels            jsonb not null default '{}',
  queues            text[] not null,
  sandbox           text not null,
  resources         jsonb not null default '{}',
  status            text not null default 'online' check (status in ('online','offline')),
  activity          text not null default 'idle',
  drain_requested   boolean not null default false,
  drain_reason      text,
  registered_at     timestamptz not null default now(),
  last_heartbeat_at timestamptz not null default now(),
  token_id          text
);
create index agents_online_idx on agents (last_heartbeat_at) where status = 'online';

create table tokens (
  id           text primary key,
  name         text not null,
  role         text not null check (role in ('admin','operator','viewer','agent')),
  hash         text not null unique,
  created_at   timestamptz not null default now(),
  created_by   text not null,
  last_used_at timestamptz,
  revoked_at   timestamptz
);

create table fleet_settings (
  id           integer primary key check (id = 1),
  mode         text not null check (mode in ('manual','auto')),
  replicas     integer not null,
  min          integer not null,
  max          integer not null,
  warm         integer not null,
  updated_at   timestamptz not null default now(),
  updated_by   text not null
);
insert into fleet_settings (id, mode, replicas, min, max, warm, updated_by)
values (1, 'manual', 2, 0, 10, 0, 'system');

create table controller_leader (
  id          integer primary key check (id = 1),
  epoch       integer not null,
  holder      text not null,
  acquired_at timestamptz not null default now()
);
insert into controller_leader (id, epoch, holder) values (1, 0, '');

create table fleet_decisions (
  id           bigserial primary key,
  at           timestamptz not null default now(),
  leader_epoch integer not null,
  desired      integer not null,
  actual       integer not null,
  reason       text not null,
  inputs       jsonb not null default '{}'
);

create table audit_log (
  seq        bigint primary key,
  at         timestamptz not null,
  actor      text not null,
  role       text not null,
  action     text not null,
  target     text not null,
  outcome    text not null check (outcome in ('ok','denied','error')),
  request_id text,
  source_ip  text,
  details    jsonb not null default '{}',
  prev_hash  text not null,
  hash       text not null
);
create index audit_actor_idx on audit_log (actor, seq desc);
create index audit_action_idx on audit_log (action, seq desc);

create function skiff_audit_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
end;
$$;
create trigger audit_log_no_update before update or delete on audit_log
  for each row execute function skiff_audit_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
  for each statement execute function skiff_audit_append_only();
