import type { ServerResponse } from "node:http";

/**
 * One Server-Sent Events connection. Writes never block the server: when the client reads slower
 * than events arrive and its unsent bytes pass `maxBuffer`, it is cut off, and it resumes from its
 * last event id on reconnect. So a slow client neither slows the others nor grows memory unbounded.
 *
 * A `paced` stream serves a backlog that waits in the database (a job's log) rather than a live
 * feed: its producer awaits `drained()` between events, so the stream holds at most a socket buffer
 * and one event and `maxBuffer` does not apply (else the producer's own burst would cut off even a
 * fast client); a client that takes nothing for `stallMs` while an event waits is cut off.
 */
export class SseStream {
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout;
  private readonly onCloseHandlers: (() => void)[] = [];
  private readonly drainWaiters = new Set<() => void>();

  constructor(
    private readonly res: ServerResponse,
    opts: { keepAliveMs: number; maxBuffer: number; paced?: boolean; stallMs?: number; retryMs?: number },
  ) {
    this.maxBuffer = opts.paced ? Number.POSITIVE_INFINITY : opts.maxBuffer;
    this.stallMs = opts.stallMs ?? 30_000;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write(`retry: ${opts.retryMs ?? 2000}\n\n`);
    this.keepAlive = setInterval(() => this.comment("keep-alive"), opts.keepAliveMs);
    this.keepAlive.unref();
    res.on("close", () => this.finish());
    // The client may have gone while the request was being authorised: its socket is closed and
    // no "close" event will come, so the stream must not count as open (it held a stream slot of
    // its token for good, and took every event).
    if (res.closed) this.finish();
  }

  private readonly maxBuffer: number;
  private readonly stallMs: number;

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.onCloseHandlers.push(fn);
  }

  send(event: string, data: unknown, id?: string | number): boolean {
    return this.sendFrames(sseFrame(event, data, id));
  }

  /** Writes frames made by `sseFrame` as one chunk: one socket write for many events. */
  sendFrames(frames: string): boolean {
    if (this.closed) return false;
    this.write(frames);
    return !this.closed;
  }

  comment(text: string): void {
    if (!this.closed) this.write(`: ${text}\n\n`);
  }

  /**
   * Resolves once the client has taken the bytes queued for it (at once unless the socket asked the
   * writer to wait), or when the stream closes. A client that takes nothing for `stallMs` is cut off.
   */
  drained(): Promise<void> {
    if (this.closed || !this.res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.res.off("drain", done);
        this.drainWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => this.cutOff(), this.stallMs);
      this.res.on("drain", done);
      this.drainWaiters.add(done);
    });
  }

  close(): void {
    if (this.closed) return;
    this.res.end();
    this.finish();
  }

  private write(chunk: string): void {
    this.res.write(chunk);
    if (this.res.writableLength > this.maxBuffer) this.cutOff();
  }

  private cutOff(): void {
    this.res.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepAlive);
    for (const fn of [...this.drainWaiters]) fn();
    for (const fn of this.onCloseHandlers.splice(0)) fn();
  }
}

/** Every open stream, so shutdown can end them cleanly. */
export class SseRegistry {
  private readonly streams = new Set<SseStream>();
  private readonly perToken = new Map<string, number>();

  /** Streams `tokenId` holds open now. */
  openFor(tokenId: string): number {
    return this.perToken.get(tokenId) ?? 0;
  }

  add(stream: SseStream, tokenId: string): void {
    this.streams.add(stream);
    this.perToken.set(tokenId, this.openFor(tokenId) + 1);
    stream.onClose(() => {
      this.streams.delete(stream);
      const left = this.openFor(tokenId) - 1;
      if (left > 0) this.perToken.set(tokenId, left);
      else this.perToken.delete(tokenId);
    });
  }

  get size(): number {
    return this.streams.size;
  }

  closeAll(): void {
    for (const s of [...this.streams]) {
      s.send("shutdown", { reason: "server shutting down; reconnect" });
      s.close();
    }
  }
}

/** One SSE event as it goes on the wire. */
export function sseFrame(event: string, data: unknown, id?: string | number): string {
  return sseFrameOfJson(event, JSON.stringify(data), id);
}

/** The same, from data already encoded as JSON on one line. */
export function sseFrameOfJson(event: string, json: string, id?: string | number): string {
  return `${id === undefined ? "" : `id: ${id}\n`}event: ${event}\ndata: ${json}\n\n`;
}
