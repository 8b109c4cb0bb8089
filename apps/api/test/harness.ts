import { randomBytes } from "node:crypto";
import { type Bus, createBus } from "@skiff/bus";
import { isFinal, type JobState, type Role } from "@skiff/protocol";
import { openStore, type Store } from "@skiff/store";
import { createTestDatabase, TEST_REDIS_URL, type TestDatabase, waitFor } from "@skiff/testkit";
import pino from "pino";
import { type Api, type ApiConfigInput, buildApi, hashToken, newTokenSecret } from "../src/index.ts";

export interface TestApi {
  api: Api;
  store: Store;
  bus: Bus;
  url: string;
  tokens: Record<Role, string>;
  /** The server's error log lines so far (the last 50), for a failing assertion to print. */
  errors(): string[];
  /** Sends a request over real HTTP to the listening server. */
  call(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> },
  ): Promise<{
    status: number;
    body: any;
  }>;
  close(): Promise<void>;
}

export interface TestApiOptions {
  adapter: "pg" | "pglite";
  redisUrl?: string;
  busPrefix?: string;
  /** Share an existing PostgreSQL database (two replicas); otherwise a fresh one per instance. */
  databaseUrl?: string;
  config?: ApiConfigInput;
  /** Connections in the API's PostgreSQL pool (10 by default). */
  poolSize?: number;
}

export async function createToken(store: Store, role: Role, name: string = role): Promise<string> {
  const secret = newTokenSecret();
  await store.createToken({ name, role, hash: hashToken(secret) }, { actor: "test", role: "system" });
  return secret;
}

export async function startTestApi(opts: TestApiOptions): Promise<TestApi> {
  let database: TestDatabase | undefined;
  let databaseUrl = opts.databaseUrl;
  if (opts.adapter === "pg" && !databaseUrl) {
    database = await createTestDatabase();
    databaseUrl = database.url;
  }
  const store = await openStore(opts.adapter === "pg" ? { databaseUrl, poolSize: opts.poolSize ?? 10 } : {});
  // Quiet, but the server's errors are kept so a failing test can say what went wrong inside.
  const errors: string[] = [];
  const logger = process.env.TEST_LOG
    ? pino({ level: process.env.TEST_LOG })
    : pino(
        { level: "error" },
        {
          write: (line: string) => {
            errors.push(line.length > 2000 ? `${line.slice(0, 2000)}…` : line);
            if (errors.length > 50) errors.shift();
          },
        },
      );
  const bus = await createBus({ redisUrl: opts.redisUrl, prefix: opts.busPrefix ?? "skiff-test", logger });
  const api = buildApi({
    config: {
      host: "127.0.0.1",
      port: 0,
      heartbeatIntervalMs: 1000,
      // Long enough that no test's agent is reaped while a loaded CI machine is slow; the reaper
      // tests ask for a short one.
      offlineAfterMs: 60_000,
      reaperIntervalMs: 200,
      ...opts.config,
    },
    store,
    bus,
    logger,
  });
  const url = await api.listen();
  const tokens = {
    admin: await createToken(store, "admin", "root"),
    operator: await createToken(store, "operator", "olivia"),
    viewer: await createToken(store, "viewer", "victor"),
    agent: await createToken(store, "agent", "agent-pool"),
  };
  return {
    api,
    store,
    bus,
    url,
    tokens,
    errors: () => [...errors],
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token === undefined ? tokens.admin : o.token;
      if (token) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        headers["content-type"] ??= "application/json";
        body = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
      }
      const res = await fetch(`${url}${path}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // metrics and other text bodies stay strings
      }
      return { status: res.status, body: parsed as any };
    },
    async close() {
      await api.shutdown();
      await bus.close();
      await store.close();
      await database?.drop();
    },
  };
}

/**
 * Two API replicas on one fresh PostgreSQL database and the test Redis, under a bus prefix of their
 * own. `close` stops both and then drops the database, which neither replica owns.
 */
export async function startReplicaPair(
  name: string,
): Promise<{ a: TestApi; b: TestApi; close(): Promise<void> }> {
  const database = await createTestDatabase();
  const shared = {
    adapter: "pg" as const,
    databaseUrl: database.url,
    redisUrl: TEST_REDIS_URL,
    busPrefix: `skiff-${name}-${randomBytes(4).toString("hex")}`,
  };
  const a = await startTestApi(shared);
  const b = await startTestApi(shared);
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await database.drop();
    },
  };
}

/** Waits for a job to reach a final state; returns it with its log lines (a viewer reads both). */
export async function finishedJob(
  t: TestApi,
  jobId: string,
  timeoutMs: number,
  intervalMs: number,
): Promise<{ job: any; lines: { text: string; stream: string }[] }> {
  const job = await waitFor(
    "the job to finish",
    async () => {
      const res = await t.call("GET", `/v1/jobs/${jobId}`, { token: t.tokens.viewer });
      return isFinal(res.body.state as JobState) ? res.body : undefined;
    },
    timeoutMs,
    intervalMs,
  );
  const logs = await t.call("GET", `/v1/jobs/${jobId}/logs?limit=1000`, { token: t.tokens.viewer });
  return { job, lines: logs.body.lines };
}

/** Registers an agent with the pool's agent token and returns its id. */
export async function registerAgent(
  t: TestApi,
  name = "w",
  labels: Record<string, string> = {},
): Promise<string> {
  const res = await t.call("POST", "/v1/agent/register", {
    token: t.tokens.agent,
    body: { name, version: "0.1.0", slots: 2, labels, sandbox: "bwrap", resources: {} },
  });
  if (res.status !== 200) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.agentId;
}

export const hello = (queue = "default", extra: Record<string, unknown> = {}) => ({
  name: "hello",
  queue,
  steps: [{ name: "greet", run: "echo hello" }],
  ...extra,
});

/** Reads SSE events from a streaming response until `until` says stop or the deadline passes. */
export async function readSse(
  url: string,
  token: string,
  until: (events: { event: string; id?: string; data: any }[]) => boolean,
  opts: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ event: string; id?: string; data: any }[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 10_000);
  const events: { event: string; id?: string; data: any }[] = [];
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, ...opts.headers },
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`SSE ${url} answered ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let idx = buffer.indexOf("\n\n");
      while (idx >= 0) {
        const block = buffer.slice(0, idx);
        buffer = buffer.slice(idx + 2);
        idx = buffer.indexOf("\n\n");
        let event = "message";
        let id: string | undefined;
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data === "") continue;
        events.push({ event, id, data: JSON.parse(data) });
        if (until(events)) return events;
      }
    }
    return events;
  } catch (err) {
    if (controller.signal.aborted) {
      throw new Error(
        `SSE ${url}: deadline passed with ${events.length} events: ${JSON.stringify(events.map((e) => e.event))}`,
      );
    }
    throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

export interface SseEvent {
  event: string;
  id?: string;
  data: any;
}

/** A live SSE connection whose events (and keep-alive comments) accumulate as they arrive. */
export interface SseClient {
  status: number;
  events: SseEvent[];
  comments: string[];
  /** Settles when the stream stops: "end" when the server ended it cleanly, "error" when it broke off. */
  closed: Promise<"end" | "error" | "aborted">;
  /** Resolves once `until` holds (checked on every chunk); fails at the deadline or if the stream stops first. */
  waitUntil(what: string, until: (c: SseClient) => boolean, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/**
 * Opens an SSE stream and keeps reading it in the background. Unlike `readSse`, the caller can act
 * between events (publish, shut down) and see how the stream ended.
 */
export async function openSse(
  url: string,
  token: string,
  opts: { headers?: Record<string, string> } = {},
): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, ...opts.headers },
    signal: controller.signal,
  });
  const checks = new Set<() => void>();
  const notify = () => {
    for (const check of [...checks]) check();
  };
  const client: SseClient = {
    status: res.status,
    events: [],
    comments: [],
    closed: Promise.resolve("end"),
    waitUntil(what, until, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        let stopped = false;
        void client.closed.then(() => {
          stopped = true;
          check();
        });
        const timer = setTimeout(() => {
          checks.delete(check);
          reject(new Error(`SSE ${url}: no ${what} within ${timeoutMs} ms; got ${summary()}`));
        }, timeoutMs);
        const check = () => {
          if (until(client)) {
            clearTimeout(timer);
            checks.delete(check);
            resolve(client.events);
          } else if (stopped) {
            clearTimeout(timer);
            checks.delete(check);
            reject(new Error(`SSE ${url}: stream stopped before ${what}; got ${summary()}`));
          }
        };
        checks.add(check);
        check();
      });
    },
    close: () => controller.abort(),
  };
  const summary = () => JSON.stringify(client.events.slice(-20).map((e) => e.event));
  if (!res.ok || !res.body) {
    controller.abort();
    return client;
  }
  const body = res.body;
  client.closed = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let idx = buffer.indexOf("\n\n");
        while (idx >= 0) {
          parseBlock(buffer.slice(0, idx), client);
          buffer = buffer.slice(idx + 2);
          idx = buffer.indexOf("\n\n");
        }
        notify();
      }
      return "end" as const;
    } catch {
      return controller.signal.aborted ? ("aborted" as const) : ("error" as const);
    }
  })();
  return client;
}

function parseBlock(block: string, into: { events: SseEvent[]; comments: string[] }): void {
  let event = "message";
  let id: string | undefined;
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) into.comments.push(line.slice(1).trim());
    else if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("id: ")) id = line.slice(4);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (data !== "") into.events.push({ event, id, data: JSON.parse(data) });
}
