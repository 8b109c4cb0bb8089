/**
 * For writes that may be lost in a database crash without harm, the commit does not wait for the
 * WAL to reach disk. A lost heartbeat is the next heartbeat; a lost claim leaves the job queued with
 * its old epoch, so the worker that got it is fenced out (409) and another runs it. Submits, results,
 * log lines and the audit log keep full durability.
 *
 * It is a CTE so the write stays one statement (its own transaction, one round trip) instead of
 * begin / set local / write / commit: `set_config(..., true)` lasts until the end of the implicit
 * transaction, commit included. The statement must reference it (`from relaxed ... where
 * relaxed.v is not null`), or PostgreSQL skips it, and must not run inside a transaction whose
 * other writes need durability.
 */
export const RELAXED_CTE = "relaxed as (select set_config('synchronous_commit', 'off', true) as v)";
