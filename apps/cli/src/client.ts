import { readFileSync } from "node:fs";
import { join } from "node:path";
import { formatPath } from "@skiff/protocol";
import { type Command, Option } from "commander";
import { request } from "undici";
import { skiffHome, UsageError } from "./env.ts";

export const DEFAULT_URL = "http://127.0.0.1:8787";

/** The options every command that talks to the API takes (docs/design.md §8). */
export interface ConnectionOptions {
  apiUrl?: string;
  /** `--base-url`, the old name of `--api-url`, still accepted and no longer shown. */
  baseUrl?: string;
  token?: string;
}

const CONNECTION_HELP = `
The token is --token, else SKIFF_TOKEN, else the file $SKIFF_HOME/admin.token (SKIFF_HOME defaults
to ./.skiff) that \`pnpm start\` writes on first start.
Exit codes: 0 ok; 1 failed (API error, unreachable API, or the outcome was a failure);
2 usage (bad flags or input); 3 auth (no token found, token refused, or role too low).`;

export function withConnection(cmd: Command): Command {
  return cmd
    .option("--api-url <url>", `the API's URL (env SKIFF_URL, default ${DEFAULT_URL})`)
    .addOption(new Option("--base-url <url>").hideHelp())
    .option("--token <token>", "an API token (env SKIFF_TOKEN, else $SKIFF_HOME/admin.token)")
    .addHelpText("after", CONNECTION_HELP);
}

/** A token and where it came from, so a refusal can say which one was refused. */
export interface Credentials {
  token: string;
  source: string;
}

/** The server answered with an error body: its catalog code, message and details. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** No token to send, or the server refused the one sent: exit 3. */
export class AuthError extends Error {
  override readonly name = "AuthError";
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The API could not be reached at all. */
export class ConnectionError extends Error {
  override readonly name = "ConnectionError";
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

export function resolveBaseUrl(opts: ConnectionOptions): string {
  const raw = opts.apiUrl ?? opts.baseUrl ?? (process.env.SKIFF_URL || DEFAULT_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`--api-url must be a URL such as ${DEFAULT_URL}, got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`--api-url must start with http:// or https://, got "${raw}"`);
  return url.toString().replace(/\/+$/, "");
}

/** `--token`, else SKIFF_TOKEN, else `$SKIFF_HOME/admin.token`; says where it looked when none is found. */
export function resolveToken(opts: ConnectionOptions): Credentials {
  if (opts.token) return { token: opts.token, source: "--token" };
  const fromEnv = process.env.SKIFF_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: "SKIFF_TOKEN" };
  const file = join(skiffHome(), "admin.token");
  let why: string;
  try {
    const token = readFileSync(file, "utf8").trim();
    if (token) return { token, source: file };
    why = "is empty";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    why = code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? (err as Error).message})`;
  }
  throw new AuthError(
    `no API token: --token was not given, SKIFF_TOKEN is not set, and ${file} ${why}`,
    "the combined node (`pnpm start`) writes an admin token to $SKIFF_HOME/admin.token on first start " +
      "(SKIFF_HOME defaults to ./.skiff: run from the same directory or set SKIFF_HOME); " +
      "otherwise ask an admin for one (`skiff tokens create --role operator --name NAME`) and pass it " +
      "with --token or SKIFF_TOKEN",
  );
}

/** The bits of a zod schema the client needs, so the CLI validates responses without its own zod. */
export interface Schema<T> {
  safeParse(
    data: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: readonly { path: PropertyKey[]; message: string }[] } };
}

/** Validates what the server sent; a mismatch means the CLI and the server are different versions. */
export function expectShape<T>(schema: Schema<T>, data: unknown, what: string): T {
  const res = schema.safeParse(data);
  if (res.success) return res.data;
  const first = res.error.issues[0];
  const where = first ? `${formatPath(first.path)}: ${first.message}` : "unexpected shape";
  throw new Error(
    `the server sent an unexpected ${what} (${where}); are the CLI and the server the same version?`,
  );
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** A `{items, nextCursor}` listing with each item validated; `raw` keeps the API objects for --json. */
export function expectPage<T>(schema: Schema<T>, data: unknown, what: string): Page<T> & { raw: unknown[] } {
  const body = (data ?? {}) as { items?: unknown; nextCursor?: unknown };
  if (!Array.isArray(body.items)) throw new Error(`the server sent an unexpected ${what} list (no items)`);
  const items = body.items.map((item) => expectShape(schema, item, what));
  const nextCursor = typeof body.nextCursor === "string" ? body.nextCursor : null;
  return { items, nextCursor, raw: body.items };
}

type Query = Record<string, string | number | undefined>;

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly credentials: Credentials,
  ) {}

  url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") params.set(k, String(v));
    const qs = params.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ""}`;
  }

  get authorization(): string {
    return `Bearer ${this.credentials.token}`;
  }

  get(path: string, query?: Query): Promise<unknown> {
    return this.call("GET", path, { query });
  }

  post(path: string, body: unknown = {}): Promise<unknown> {
    return this.call("POST", path, { body });
  }

  put(path: string, body: unknown): Promise<unknown> {
    return this.call("PUT", path, { body });
  }

  delete(path: string): Promise<unknown> {
    return this.call("DELETE", path, {});
  }

  async call(method: string, path: string, opts: { body?: unknown; query?: Query }): Promise<unknown> {
    const headers: Record<string, string> = { authorization: this.authorization, accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(this.url(path, opts.query), {
        method: method as "GET",
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        headersTimeout: 30_000,
        bodyTimeout: 60_000,
      });
    } catch (err) {
      throw connectionError(this.baseUrl, err);
    }
    const text = await res.body.text();
    const type = String(res.headers["content-type"] ?? "");
    let data: unknown;
    try {
      data = text === "" ? undefined : JSON.parse(text);
    } catch {
      throw notSkiff(
        this.baseUrl,
        `${method} ${path} answered HTTP ${res.statusCode} with ${type || "no content type"}, not JSON`,
      );
    }
    if (res.statusCode >= 400) throw this.errorFrom(res.statusCode, data);
    return data;
  }

  /** Turns an error response into an ApiError with a hint for the auth cases. */
  errorFrom(status: number, data: unknown): ApiError | ConnectionError {
    const body = (typeof data === "object" && data !== null ? data : {}) as {
      error?: { code?: unknown; message?: unknown; details?: unknown };
    };
    // Every Skiff error has {error: {code, message}}; a server that answers otherwise is not Skiff.
    if (typeof body.error?.code !== "string" && status !== 429 && status < 500)
      return notSkiff(this.baseUrl, `it answered HTTP ${status} without a Skiff error body`);
    const code = typeof body.error?.code === "string" ? body.error.code : `http_${status}`;
    const message =
      typeof body.error?.message === "string"
        ? body.error.message
        : `the server answered HTTP ${status}${typeof data === "string" && data ? `: ${data.slice(0, 200)}` : ""}`;
    let hint: string | undefined;
    if (status === 401)
      hint = `the token from ${this.credentials.source} was refused; pass a live one with --token or SKIFF_TOKEN (an admin can make one: \`skiff tokens create\`)`;
    else if (status === 403)
      hint = `the token from ${this.credentials.source} is valid but its role is too low; ask an admin for a token with the role this needs`;
    else if (status === 429) hint = "too many failed requests with this token; wait and try again";
    return new ApiError(status, code, message, body.error?.details, hint);
  }
}

/** Connects with the resolved URL and token; throws AuthError (exit 3) when there is no token. */
export function connect(opts: ConnectionOptions): ApiClient {
  const baseUrl = resolveBaseUrl(opts);
  return new ApiClient(baseUrl, resolveToken(opts));
}

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  ECONNRESET: "connection reset",
  EHOSTUNREACH: "host unreachable",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
  UND_ERR_HEADERS_TIMEOUT: "no answer in time",
  UND_ERR_BODY_TIMEOUT: "the answer stalled",
  UND_ERR_SOCKET: "the connection broke",
};

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  if (typeof e?.code === "string") return e.code;
  if (e?.cause) return errorCode(e.cause);
  if (Array.isArray(e?.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  return undefined;
}

/** Something answers at the URL, but not the Skiff API: say so instead of showing its page. */
export function notSkiff(baseUrl: string, what: string): ConnectionError {
  return new ConnectionError(
    `the server at ${baseUrl} is not a Skiff API: ${what}`,
    "check --api-url / SKIFF_URL: it is the address `skiff up` or `skiff api` prints (default http://127.0.0.1:8787)",
  );
}

export function connectionError(baseUrl: string, err: unknown): ConnectionError {
  const code = errorCode(err);
  const what = (code && UNREACHABLE[code]) ?? (err as Error).message;
  return new ConnectionError(
    `cannot reach the API at ${baseUrl}: ${what}`,
    "is it running? Start it with `pnpm start` (or `skiff up`), or point --api-url / SKIFF_URL at a running API",
  );
}
