import {
  type AgentCommand,
  type AgentRegisterBody,
  AgentRegisterResponse,
  type JobEvent,
  type JobSpec,
  type Outcome,
} from "@skiff/protocol";
import { Pool } from "undici";

/** The API answered with an error from the catalog. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The API could not be reached (down, restarting, network): retry with backoff. */
export class ApiUnreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ApiUnreachable";
  }
}

export interface ClaimedJob {
  job: { id: string; spec: JobSpec; name: string; queue: string };
  epoch: number;
  attempt: number;
}

/** Errors where the request surely never reached the API: another replica may take it at once. */
function neverSent(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return [
    "ECONNREFUSED",
    "ENOTFOUND",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EAI_AGAIN",
    "UND_ERR_CONNECT_TIMEOUT",
  ].includes(code ?? "");
}

/** How many registered agents' credentials are kept: runs of a replaced agent may still report. */
const KEPT_CREDENTIALS = 16;

/**
 * The agent side of the protocol (docs/design.md §3.5), over keep-alive HTTP. `token` only registers when
 * the API hands out agent credentials: every call that names an agent then goes with that
 * agent's own credential.
 */
export class AgentClient {
  private readonly pools: Pool[];
  private current = 0;
  private readonly credentials = new Map<string, string>();
  readonly baseUrls: string[];

  /**
   * `baseUrls`: one API URL or several replicas of the same API. Calls go to one of them; when it
   * cannot be reached (or answers 5xx) the client moves on to the next, at once when the request
   * never left (connection refused), otherwise on the caller's retry.
   */
  constructor(
    baseUrls: string | string[],
    private readonly token: string,
  ) {
    this.baseUrls = typeof baseUrls === "string" ? [baseUrls] : [...baseUrls];
    if (this.baseUrls.length === 0) throw new Error("AgentClient needs at least one API URL");
    this.pools = this.baseUrls.map(
      (url) =>
        new Pool(url, {
          connections: 16,
          keepAliveTimeout: 30_000,
          headersTimeout: 90_000,
          bodyTimeout: 90_000,
        }),
    );
  }

  /** The API URL calls go to now. */
  get baseUrl(): string {
    return this.baseUrls[this.current] ?? "";
  }

  /** Moves on from `index` (if it is still the current one) to the next replica. */
  private failOver(index: number): void {
    if (this.current === index && this.pools.length > 1) this.current = (index + 1) % this.pools.length;
  }

  /** Whether calls as this agent carry its own credential, so that a 401 means the credential died. */
  hasCredential(agentId: string): boolean {
    return this.credentials.has(agentId);
  }

  private tokenFor(body: unknown): string {
    const agentId = (body as { agentId?: unknown }).agentId;
    return (typeof agentId === "string" && this.credentials.get(agentId)) || this.token;
  }

  private async post<T>(
    path: string,
    body: unknown,
    signal?: AbortSignal,
    token = this.tokenFor(body),
  ): Promise<T> {
    let res: Awaited<ReturnType<Pool["request"]>> | undefined;
    let index = this.current;
    // Each replica at most once per call, and only while the request surely never reached one.
    for (let tried = 0; res === undefined; tried++) {
      index = this.current;
      try {
        res = await (this.pools[index] as Pool).request({
          method: "POST",
          path,
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(body),
          signal,
        });
      } catch (err) {
        this.failOver(index);
        if (neverSent(err) && tried + 1 < this.pools.length && !signal?.aborted) continue;
        throw new ApiUnreachable(`${this.baseUrls[index]}${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const text = await res.body.text().catch(() => "");
    if (res.statusCode >= 500) {
      this.failOver(index);
      throw new ApiUnreachable(`${this.baseUrls[index]}${path}: HTTP ${res.statusCode}`);
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new ApiUnreachable(`${path}: HTTP ${res.statusCode} with a body that is not JSON`);
    }
    if (res.statusCode >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string } }).error;
      throw new ApiError(res.statusCode, e?.code ?? "unknown", e?.message ?? `HTTP ${res.statusCode}`);
    }
    return parsed as T;
  }

  /** Always with the registration token; remembers the agent credential the API answers with. */
  async register(body: AgentRegisterBody): Promise<AgentRegisterResponse> {
    const res = AgentRegisterResponse.parse(
      await this.post("/v1/agent/register", body, undefined, this.token),
    );
    if (res.agentToken) {
      this.credentials.set(res.agentId, res.agentToken);
      for (const oldest of this.credentials.keys()) {
        if (this.credentials.size <= KEPT_CREDENTIALS) break;
        this.credentials.delete(oldest);
      }
    }
    return res;
  }

  /**
   * A job call. When the agent's own credential is refused, the agent was deregistered or marked
   * offline, and its leases went with it: the caller hears `lease_lost`, and stops the job.
   */
  private async jobCall<T>(path: string, body: { agentId: string }, jobId: string): Promise<T> {
    try {
      return await this.post<T>(path, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401 && this.hasCredential(body.agentId)) {
        throw new ApiError(
          409,
          "lease_lost",
          `agent ${body.agentId} is gone (its credential was refused), and with it the lease on job ${jobId}`,
        );
      }
      throw err;
    }
  }

  heartbeat(body: {
    agentId: string;
    status: "idle" | "busy" | "draining" | "degraded";
    running: { jobId: string; epoch: number }[];
    resources: Record<string, number>;
  }): Promise<{ commands: AgentCommand[] }> {
    return this.post("/v1/agent/heartbeat", body);
  }

  claim(
    body: { agentId: string; max: number; waitMs: number },
    signal?: AbortSignal,
  ): Promise<{ jobs: ClaimedJob[] }> {
    return this.post("/v1/agent/claim", body, signal);
  }

  events(
    jobId: string,
    body: { agentId: string; epoch: number; events: JobEvent[] },
  ): Promise<{ cancel: boolean }> {
    return this.jobCall(`/v1/agent/jobs/${encodeURIComponent(jobId)}/events`, body, jobId);
  }

  finish(
    jobId: string,
    body: { agentId: string; epoch: number; outcome: Outcome; exitCode: number | null; error?: string },
  ): Promise<unknown> {
    return this.jobCall(`/v1/agent/jobs/${encodeURIComponent(jobId)}/finish`, body, jobId);
  }

  deregister(agentId: string): Promise<unknown> {
    return this.post("/v1/agent/deregister", { agentId });
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.close()));
  }
}
