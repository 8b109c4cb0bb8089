-- A `job.state` event carries the job's own start and finish times, as stored: a console showing
-- how long a job took from events alone used to stamp them on arrival, so a stream that lagged or
-- a console that reconnected showed durations that were the network's, not the job's. The old
-- function stays for events already written by its callers during a rolling upgrade.
create function skiff_job_state(
  id text, state text, queue text, agent_id text, epoch integer, attempt integer,
  max_attempts integer, exit_code integer, reason text, started_at timestamptz, finished_at timestamptz
) returns jsonb language sql stable as $$
  select skiff_job_state(id, state, queue, agent_id, epoch, attempt, max_attempts, exit_code, reason)
    || jsonb_build_object(
      'startedAt', to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
      'finishedAt', to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    )
$$;
