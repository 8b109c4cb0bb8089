/** The states in which a job is held by an agent under a lease. */
export const LIVE_STATES = new Set(["assigned", "running", "canceling"]);

/**
 * The same list as a SQL literal, for `state in ${LIVE_SQL}`. A literal and not a parameter: it
 * matches the predicate of the partial index jobs_agent_idx, which `= any($1)` would not.
 */
export const LIVE_SQL = `(${[...LIVE_STATES].map((s) => `'${s}'`).join(", ")})`;
