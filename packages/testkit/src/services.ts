import net from "node:net";

export const TEST_PG_ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/** Whether something accepts TCP connections at the URL's host and port. */
export function reachable(url: string, defaultPort: number, timeoutMs = 1_000): Promise<boolean> {
  const u = new URL(url);
  const port = u.port ? Number(u.port) : defaultPort;
  const host = u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export interface ServiceGate {
  available: boolean;
  /** Throw this in CI when the service is missing; null when it is there. */
  missing: string | null;
}

/**
 * Decides what a test that needs `name` does: run; skip (developer machine without the service);
 * or fail (CI, where a missing service is a broken setup, never a reason to pass).
 */
export async function gate(name: string, url: string, defaultPort: number): Promise<ServiceGate> {
  const available = await reachable(url, defaultPort);
  if (available) return { available, missing: null };
  const where = new URL(url).host;
  return {
    available,
    missing: `${name} is not reachable at ${where}; start it (see .ci/run) or set ${
      name === "PostgreSQL" ? "TEST_DATABASE_URL" : "TEST_REDIS_URL"
    }`,
  };
}

/** One gate for a test that needs every one of `gates`: open when all are, else naming the first missing. */
export function allOf(...gates: ServiceGate[]): ServiceGate {
  return {
    available: gates.every((g) => g.available),
    missing: gates.find((g) => !g.available)?.missing ?? null,
  };
}

export const inCi = (): boolean => Boolean(process.env.CI);

export const pgGate = () => gate("PostgreSQL", TEST_PG_ADMIN_URL, 5432);
export const redisGate = () => gate("Redis", TEST_REDIS_URL, 6379);
