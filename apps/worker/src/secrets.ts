/**
 * The secrets a worker may hand to jobs. Its operator lists them explicitly as environment variables
 * named `SKIFF_SECRET_<NAME>`; a job's `secrets: [NAME]` gets the value as `NAME`. Nothing else in the
 * worker's environment (its token, `DATABASE_URL`, `PATH`) can ever be asked for.
 */
export const SECRET_PREFIX = "SKIFF_SECRET_";

export function secretsFromEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(SECRET_PREFIX) || value === undefined) continue;
    const name = key.slice(SECRET_PREFIX.length);
    if (name !== "") out[name] = value;
  }
  return out;
}

/** The refusal for a secret the worker does not hold; the same words whatever else exists. */
export function secretRefusal(names: string[], workerName: string): string {
  return (
    `secret${names.length > 1 ? "s" : ""} ${names.join(", ")} not held by worker ${workerName}: ` +
    `a worker serves only the secrets its operator gives it as ${SECRET_PREFIX}<NAME> variables`
  );
}
