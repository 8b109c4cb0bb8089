import type {
  AgentCommand,
  AgentRegisterBody,
  AgentRegisterResponse,
  JobEvent,
  JobSpec,
  Outcome,
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

/** The agent side of the protocol (DESIGN §3), over keep-alive HTTP. */
export class AgentClient {
  private readonly pool: Pool;

  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {
    this.pool = new Pool(baseUrl, {
      connections: 16,
      keepAliveTimeout: 30_000,
      headersTimeout: 90_000,
      bodyTimeout: 90_000,
    });
  }

  private async post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    let res: Awaited<ReturnType<Pool["request"]>>;
    try {
      res = await this.pool.request({
        method: "POST",
        path,
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      throw new ApiUnreachable(`${this.baseUrl}${path}: ${(err as Error).message}`, { cause: err });
    }
    const text = await res.body.text().catch(() => "");
    if (res.statusCode >= 500) throw new ApiUnreachable(`${path}: HTTP ${res.statusCode}`);
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

  register(body: AgentRegisterBody): Promise<AgentRegisterResponse> {
    return this.post("/v1/agent/register", body);
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
    return this.post(`/v1/agent/jobs/${encodeURIComponent(jobId)}/events`, body);
  }

  finish(
    jobId: string,
    body: { agentId: string; epoch: number; outcome: Outcome; exitCode: number | null; error?: string },
  ): Promise<unknown> {
    return this.post(`/v1/agent/jobs/${encodeURIComponent(jobId)}/finish`, body);
  }

  deregister(agentId: string): Promise<unknown> {
    return this.post("/v1/agent/deregister", { agentId });
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
