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
  const token = await tokenCheck(opts, base, api.ok);
  const checks = [api, token, dependency(ready, "database"), dependency(ready, "bus")];
  checks.push(
    token.ok
      ? await queueCheck(new ApiClient(base, resolveToken(opts)))
      : {
          name: "queues",
          ok: false,
          detail: "not checked: reading agents and queued jobs needs a working token (see token above)",
          next: "fix the token, then run skiff doctor again",
        },
  );
  return checks;
}

interface AgentQueues {
  status: string;
  activity: string;
  drainRequested: boolean;
  queues: string[];
}

/** Pages of queued jobs read at most (500 each): enough to tell, without walking a huge backlog. */
const QUEUED_PAGES = 20;

/**
 * Queued jobs on queues no online agent serves wait for a worker that is not there: not backlog, a
 * fleet that lacks a queue (or whose workers for it are gone or draining).
 */
async function queueCheck(client: ApiClient): Promise<Check> {
  const name = "queues";
  try {
    const agents = ((await client.get("/v1/agents")) as { items: AgentQueues[] }).items;
    const served = new Set<string>();
    for (const a of agents)
      if (a.status === "online" && a.activity !== "draining" && !a.drainRequested)
        for (const q of a.queues) served.add(q);
    const { unserved, queued, complete } = await queuedByQueue(client, served);
    const atLeast = complete ? "" : "at least ";
    const servedText = served.size > 0 ? [...served].sort().join(", ") : "none";
    if (unserved.size === 0)
      return {
        name,
        ok: true,
        detail: `${atLeast}${queued} queued, every one on a queue an online agent serves (served: ${servedText})`,
      };
    const list = [...unserved]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([q, n]) => `${q} (${n})`)
      .join(", ");
    const starts = [...unserved.keys()]
      .sort()
      .map((q) => `skiff worker --labels queue=${q}`)
      .join("; ");
    return {
      name,
      ok: false,
      detail: `${atLeast}${[...unserved.values()].reduce((a, b) => a + b, 0)} queued jobs wait on queues no online agent serves: ${list} (served: ${servedText})`,
      next: `start a worker for each (${starts}), or see why their workers are offline or draining (skiff agents)`,
    };
  } catch (e) {
    return { name, ok: false, detail: `could not list agents and queued jobs: ${(e as Error).message}` };
  }
}

/**
 * Queued jobs per queue, split into those on a served queue and those not: from the API's counts over
 * the whole table, or, from an API without them, by paging the queued jobs (QUEUED_PAGES at most).
 */
async function queuedByQueue(
  client: ApiClient,
  served: ReadonlySet<string>,
): Promise<{ unserved: Map<string, number>; queued: number; complete: boolean }> {
  const unserved = new Map<string, number>();
  let queued = 0;
  const counts = (await client.get("/v1/stats/jobs").catch((e: { status?: number }) => {
    if (e.status === 404) return null;
    throw e;
  })) as { queued: Record<string, number> } | null;
  if (counts) {
    for (const [q, n] of Object.entries(counts.queued)) {
      queued += n;
      if (n > 0 && !served.has(q)) unserved.set(q, n);
    }
    return { unserved, queued, complete: true };
  }
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = (await client.get(
      `/v1/jobs?state=queued&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    )) as { items: { queue: string }[]; nextCursor: string | null };
    for (const j of page.items) {
      queued++;
      if (!served.has(j.queue)) unserved.set(j.queue, (unserved.get(j.queue) ?? 0) + 1);
    }
    cursor = page.nextCursor;
    pages++;
  } while (cursor !== null && pages < QUEUED_PAGES);
  return { unserved, queued, complete: cursor === null };
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
