import type { Command } from "commander";
import { request } from "undici";
import { action, EXIT } from "../action.ts";
import {
  ApiClient,
  ApiError,
  AuthError,
  type ConnectionOptions,
  connectionError,
  resolveBaseUrl,
  resolveToken,
  withConnection,
} from "../client.ts";
import {
  type Check,
  checkBwrap,
  checkCgroups,
  checkDocker,
  checkSlirp,
  checkUserNamespaces,
  dockerEgressNote,
} from "../host-checks.ts";
import { err, out, paint, printJson } from "../output.ts";

interface Readiness {
  status?: string;
  checks?: Record<string, { ok?: boolean; error?: string; kind?: string }>;
}

export function registerDoctor(program: Command): void {
  withConnection(
    program
      .command("doctor")
      .description(
        "check the API, the token, the database, the bus and this host's sandboxes; explain each fix",
      )
      .option("--json", "print {ok, checks:[{name, ok, detail, next}]}"),
  ).action(
    action(async (opts: ConnectionOptions & { json?: boolean }) => {
      const checks = [...(await apiChecks(opts)), ...(await hostChecks())];
      const ok = checks.every((c) => c.ok);
      if (opts.json) printJson({ ok, checks });
      else printChecks(checks);
      if (!ok) process.exitCode = EXIT.failed;
    }),
  );
}

function printChecks(checks: Check[]): void {
  const width = Math.max(...checks.map((c) => c.name.length));
  const s = process.stdout;
  for (const c of checks) {
    const mark = c.ok ? paint(s, "green", "OK  ") : paint(s, "red", "FAIL");
    out(`${mark}  ${c.name.padEnd(width)}  ${c.detail}`);
    if (!c.ok && c.next) out(`${" ".repeat(width + 8)}next: ${c.next}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  if (failed > 0) err(`${failed} check(s) failed`);
}

/** Reachability (/readyz), the token (/v1/whoami), and the database and bus as the API sees them. */
async function apiChecks(opts: ConnectionOptions): Promise<Check[]> {
  const base = resolveBaseUrl(opts);
  let ready: Readiness | null = null;
  let api: Check;
  try {
    const res = await request(`${base}/readyz`, { headersTimeout: 5000, bodyTimeout: 5000 });
    const text = await res.body.text();
    try {
      ready = JSON.parse(text) as Readiness;
    } catch {
      ready = {};
    }
    const shuttingDown = ready.checks?.shutdown?.ok === false;
    api = shuttingDown
      ? {
          name: "api",
          ok: false,
          detail: `${base} is shutting down`,
          next: "wait for it to come back, or point --api-url at another replica",
        }
      : {
          name: "api",
          ok: res.statusCode === 200 || res.statusCode === 503,
          detail: `reachable at ${base} (${res.statusCode === 200 ? "ready" : `not ready: HTTP ${res.statusCode}`})`,
          next: "is --api-url the Skiff API? /readyz should answer 200 or 503",
        };
  } catch (e) {
    const c = connectionError(base, e);
    api = { name: "api", ok: false, detail: c.message, next: c.hint };
  }
  return [api, await tokenCheck(opts, base, api.ok), dependency(ready, "database"), dependency(ready, "bus")];
}

async function tokenCheck(opts: ConnectionOptions, base: string, reachable: boolean): Promise<Check> {
  const name = "token";
  let client: ApiClient;
  try {
    client = new ApiClient(base, resolveToken(opts));
  } catch (e) {
    if (e instanceof AuthError) return { name, ok: false, detail: e.message, next: e.hint };
    throw e;
  }
  const from = client.credentials.source;
  if (!reachable)
    return {
      name,
      ok: false,
      detail: `not checked (the API is unreachable); token from ${from}`,
      next: "fix the api line first",
    };
  try {
    const who = (await client.get("/v1/whoami")) as { name?: unknown; role?: unknown };
    return {
      name,
      ok: true,
      detail: `valid: "${String(who.name)}" with role ${String(who.role)} (from ${from})`,
    };
  } catch (e) {
    if (e instanceof ApiError)
      return {
        name,
        ok: false,
        detail: `${e.message} (${e.code}); token from ${from}`,
        next: e.hint ?? "check the token",
      };
    return { name, ok: false, detail: (e as Error).message, next: "check --api-url and that the API is up" };
  }
}

const FIXES: Record<string, Record<string, string>> = {
  database: {
    pg: 'check DATABASE_URL on the API and that PostgreSQL answers (`pg_isready -d "$DATABASE_URL"`)',
    pglite:
      "check that $SKIFF_HOME/data is writable, has free space, and is not used by another skiff process",
    default: "check the API's database settings and its log",
  },
  bus: {
    redis: 'check REDIS_URL on the API and that Redis answers (`redis-cli -u "$REDIS_URL" ping`)',
    default: "check the API's bus settings and its log",
  },
};

function dependency(ready: Readiness | null, name: "database" | "bus"): Check {
  const c = ready?.checks?.[name];
  if (!ready || !c)
    return { name, ok: false, detail: "unknown: the API did not report it", next: "fix the api line first" };
  const kind = c.kind ?? "unknown";
  const fixes = FIXES[name] ?? {};
  if (c.ok) return { name, ok: true, detail: `${kind}: ok` };
  return { name, ok: false, detail: `${kind}: ${c.error ?? "down"}`, next: fixes[kind] ?? fixes.default };
}

async function hostChecks(): Promise<Check[]> {
  const [docker, bwrap, cgroups, slirp] = await Promise.all([
    checkDocker(),
    checkBwrap(),
    checkCgroups(),
    checkSlirp(),
  ]);
  return [docker, dockerEgressNote(docker), bwrap, slirp, checkUserNamespaces(), cgroups];
}
