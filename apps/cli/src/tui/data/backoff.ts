export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Spread of the random factor: 0.2 makes delays 80-120% of nominal, so clients do not stampede. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 5_000, jitter: 0.2 };

/** The wait before reconnect attempt `attempt` (0 for the first): doubling from `initialMs` up to `maxMs`. */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const nominal = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  const factor = 1 - policy.jitter + 2 * policy.jitter * random();
  return Math.round(Math.min(policy.maxMs, nominal * factor));
}
