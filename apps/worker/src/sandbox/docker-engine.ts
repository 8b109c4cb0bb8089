import type { Duplex } from "node:stream";
import { Pool } from "undici";
import { z } from "zod";
import { type FlowReader, LineSplitter, readWithFlow } from "./lines.ts";
import type { StepRun } from "./types.ts";

/** Docker 20.10's API; later engines still serve it, so field meanings stay fixed. */
export const API_VERSION = "1.41";

/** A non-2xx answer from the Docker Engine API, with its status and the engine's message. */
export class DockerApiError extends Error {
  readonly code = "docker_api";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "DockerApiError";
  }
}

const ApiMessage = z.object({ message: z.string() });

export interface CallOptions {
  body?: unknown;
  /** For calls that last as long as the container does (wait, stop): no undici timeouts. */
  long?: boolean;
  signal?: AbortSignal;
}

/** Just enough of the Engine API, over its Unix socket. */
export class Engine {
  private readonly pool: Pool;

  constructor(readonly socketPath: string) {
    this.pool = new Pool("http://docker", { socketPath, connections: null });
  }

  async text(method: "GET" | "POST" | "DELETE", path: string, opts: CallOptions = {}) {
    const res = await this.pool.request({
      method,
      path: `/v${API_VERSION}${path}`,
      headers: opts.body === undefined ? {} : { "content-type": "application/json" },
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal: opts.signal ?? null,
      ...(opts.long
        ? { headersTimeout: 0, bodyTimeout: 0 }
        : { headersTimeout: 10_000, bodyTimeout: 30_000 }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let message = text.trim();
      try {
        message = ApiMessage.parse(JSON.parse(text)).message;
      } catch {
        // not the engine's JSON error body; keep the raw text
      }
      throw new DockerApiError(res.statusCode, `${method} ${path}: ${res.statusCode} ${message}`);
    }
    return { status: res.statusCode, text, headers: res.headers };
  }

  async json<T>(method: "GET" | "POST", path: string, schema: z.ZodType<T>, opts: CallOptions = {}) {
    const { text } = await this.text(method, path, opts);
    return schema.parse(JSON.parse(text));
  }

  /** Attaches to a created container's stdout and stderr: a raw, multiplexed stream. */
  async attach(id: string): Promise<Duplex> {
    const { socket } = await this.pool.upgrade({
      method: "POST",
      path: `/v${API_VERSION}/containers/${id}/attach?stream=1&stdout=1&stderr=1`,
      protocol: "tcp",
    });
    return socket;
  }

  async ping(): Promise<string | undefined> {
    const res = await this.pool.request({ method: "GET", path: "/_ping", headersTimeout: 5_000 });
    await res.body.text();
    if (res.statusCode !== 200) throw new Error(`/_ping answered ${res.statusCode}`);
    const version = res.headers["api-version"];
    return typeof version === "string" ? version : undefined;
  }
}

/**
 * Decodes the engine's multiplexed stream: frames of an 8-byte header (stream id, 3 zero bytes,
 * big-endian payload size) and the payload, which may arrive split across any number of chunks.
 */
class Demuxer {
  private readonly header = Buffer.alloc(8);
  private headerBytes = 0;
  private stream = 0;
  private remaining = 0;

  constructor(private readonly out: (stream: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const n = Math.min(8 - this.headerBytes, chunk.length - offset);
        chunk.copy(this.header, this.headerBytes, offset, offset + n);
        this.headerBytes += n;
        offset += n;
        if (this.headerBytes < 8) return;
        this.headerBytes = 0;
        this.stream = this.header.readUInt8(0);
        this.remaining = this.header.readUInt32BE(4);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - offset);
      this.out(this.stream, chunk.subarray(offset, offset + n));
      this.remaining -= n;
      offset += n;
    }
  }
}

/**
 * Feeds the attached stream into per-stream line splitters; `done` settles once it closed. The
 * stream is not read while the step's flow is full (the container's writes then wait), until the
 * step is aborted.
 */
export function pumpOutput(socket: Duplex, step: StepRun): { done: Promise<void>; reader: FlowReader } {
  const stdout = new LineSplitter((line) => step.onLine("stdout", line));
  const stderr = new LineSplitter((line) => step.onLine("stderr", line));
  const demuxer = new Demuxer((stream, payload) => (stream === 2 ? stderr : stdout).push(payload));
  const reader = readWithFlow(socket, (chunk) => demuxer.push(chunk), step.flow);
  const release = () => reader.release();
  step.signal.addEventListener("abort", release, { once: true });
  if (step.signal.aborted) release();
  const done = new Promise<void>((resolve) => {
    socket.once("close", () => {
      step.signal.removeEventListener("abort", release);
      stdout.end();
      stderr.end();
      resolve();
    });
    // A broken stream only loses output; the exit status still comes from /wait.
    socket.once("error", () => socket.destroy());
  });
  return { done, reader };
}
