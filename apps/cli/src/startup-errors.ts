/**
 * What stops a long-running process at start, said so the operator knows what to change: the port
 * that is taken and the flag that moves it, the database that cannot be reached and where to look.
 */

/** A process could not start for a reason outside the command line: exit 1, with a hint. */
export class StartupError extends Error {
  override readonly name = "StartupError";
  constructor(
    message: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface ErrnoLike {
  code?: unknown;
  port?: unknown;
  errors?: unknown[];
  cause?: unknown;
}

/** The innermost error that carries a code, looking through AggregateError (localhost's two addresses) and causes. */
function coded(err: unknown): ErrnoLike | undefined {
  const e = err as ErrnoLike | undefined;
  if (typeof e?.code === "string") return e;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return coded(e.errors[0]);
  if (e?.cause) return coded(e.cause);
  return undefined;
}

function codeOf(err: unknown): string | undefined {
  const code = coded(err)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.password) url.password = "";
    return url.toString();
  } catch {
    return "(not a URL)";
  }
}

/**
 * Fails at once, as `portInUse` words it, when `host:port` cannot be listened on: a server that
 * opens its database first would otherwise make its user wait for that to learn the port is taken.
 * (The real listen later still reports a port taken in between.)
 */
export async function checkPortFree(host: string, port: number, flag: string): Promise<void> {
  if (port === 0) return;
  const { createServer } = await import("node:net");
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err) => reject(portInUse(err, host, port, flag) ?? err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** `listen EADDRINUSE` as the port that is taken and the flag that picks another. */
export function portInUse(err: unknown, host: string, port: number, flag: string): StartupError | null {
  const code = codeOf(err);
  if (code === "EADDRINUSE") {
    return new StartupError(
      `port ${port} on ${host} is in use: another process (perhaps another skiff) listens there`,
      `stop that process, or pass ${flag} with another port (${flag} 0 picks a free one)`,
      { cause: err },
    );
  }
  if (code === "EACCES") {
    return new StartupError(
      `not allowed to listen on ${host}:${port}`,
      `ports below 1024 need privileges; pass ${flag} with a port above 1024`,
      { cause: err },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new StartupError(
      `${host} is not an address of this machine`,
      "pass --host with one of its addresses (127.0.0.1, or 0.0.0.0 for all)",
      { cause: err },
    );
  }
  return null;
}

const DATABASE_FAULTS: Record<string, string> = {
  ECONNREFUSED: "connection refused (nothing listens there)",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ECONNRESET: "the connection was reset",
  "28P01": "password authentication failed",
  "28000": "the server refused this user",
  "3D000": "the database does not exist",
};

/** A PostgreSQL connection failure as the database it is, its URL without password and what to check. */
export function databaseUnreachable(err: unknown, url: string, source: string): StartupError | null {
  const code = codeOf(err);
  const why = code ? DATABASE_FAULTS[code] : undefined;
  if (!why) return null;
  let where = "the host and port";
  let port = 5432;
  try {
    const u = new URL(url);
    port = Number(u.port || "5432");
    where = `${u.hostname}:${port}`;
  } catch {}
  // A refused connection to another port is some other service's (Redis), not the database's.
  const refusedPort = coded(err)?.port;
  if (typeof refusedPort === "number" && refusedPort !== port) return null;
  const hint =
    code === "28P01" || code === "28000"
      ? `check the user and password in ${source}`
      : code === "3D000"
        ? `create the database, or fix its name in ${source}`
        : `check that PostgreSQL is running and reachable at ${where}, and that ${source} names the right host and port`;
  return new StartupError(
    `cannot use the PostgreSQL database at ${redactUrl(url)} (${source}): ${why}`,
    hint,
    {
      cause: err,
    },
  );
}
