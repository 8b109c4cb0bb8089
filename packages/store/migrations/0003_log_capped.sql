-- Two facts that were one column: whether some of a job's output was left out (`log_truncated`,
-- shown to users; a worker keeping a job within the cap sets it with its marker), and whether the
-- API itself cut the log at its cap (`log_capped`), after which it stores no more output lines.
alter table jobs add column log_capped boolean not null default false;
update jobs set log_capped = log_truncated;
