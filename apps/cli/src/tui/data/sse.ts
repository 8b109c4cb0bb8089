import { EventSource, type FetchLike } from "eventsource";
import type { Feed, FeedHandlers } from "./backend.ts";
import { type BackoffPolicy, backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";

export interface SseFeedOptions extends FeedHandlers {
  url: string;
  authorization: string;
  /** Event names to listen for. */
  events: readonly string[];
  /** After this event the stream is over: closed, and not reopened. */
  endEvent?: string;
  backoff?: BackoffPolicy;
}

/**
 * One Server-Sent Events stream that outlives the server: any drop, refusal or failed connect is
 * followed by another try after a growing pause (shown as "reconnecting in Ns"), and every try sends
 * `Last-Event-ID` so the server replays what was missed. The `eventsource` package's own retry is not
 * used: it gives up on any non-200 answer (a restarting API says 503) and shows no countdown.
 */
export class SseFeed implements Feed {
  private source: EventSource | null = null;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  lastEventId: string | undefined;

  constructor(private readonly opts: SseFeedOptions) {}

  start(): this {
    this.opts.onState({ kind: "connecting" });
    this.connect();
    return this;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.opts.onState({ kind: "closed" });
  }

  private connect(): void {
    let status = 0;
    const authorizedFetch: FetchLike = async (url, init) => {
      const headers: Record<string, string> = { ...init.headers, authorization: this.opts.authorization };
      if (this.lastEventId !== undefined) headers["last-event-id"] = this.lastEventId;
      const res = await fetch(url, { ...init, headers });
      status = res.status;
      return res;
    };
    const es = new EventSource(this.opts.url, { fetch: authorizedFetch });
    this.source = es;
    es.addEventListener("open", () => {
      if (this.source !== es) return;
      this.attempt = 0;
      this.opts.onState({ kind: "live" });
    });
    for (const name of this.opts.events) es.addEventListener(name, (ev) => this.deliver(es, name, ev));
    es.addEventListener("error", (ev) => {
      if (this.source !== es || this.closed) return;
      // `eventsource` arms its own reconnect timer just after this event; closing once it has done
      // so clears that timer too (closing now would leave it to hold the process for seconds).
      queueMicrotask(() => es.close());
      this.source = null;
      this.retry(ev.code ?? status, ev.message ?? "connection lost");
    });
  }

  private deliver(es: EventSource, name: string, ev: MessageEvent): void {
    if (this.source !== es || this.closed) return;
    if (ev.lastEventId) this.lastEventId = ev.lastEventId;
    let data: unknown;
    try {
      data = JSON.parse(String(ev.data));
    } catch {
      return;
    }
    this.opts.onEvent(name, data, ev.lastEventId || undefined);
    if (name === this.opts.endEvent && !this.closed) {
      this.closed = true;
      es.close();
      this.source = null;
      this.opts.onState({ kind: "ended" });
    }
  }

  private retry(status: number, message: string): void {
    const delay = backoffDelay(this.attempt++, this.opts.backoff ?? DEFAULT_BACKOFF);
    const retryAt = Date.now() + delay;
    const refused = status === 401 || status === 403;
    const reason = status ? `HTTP ${status}` : message;
    this.opts.onState(
      refused ? { kind: "unauthorised", retryAt, reason } : { kind: "reconnecting", retryAt, reason },
    );
    this.timer = setTimeout(() => {
      if (!this.closed) this.connect();
    }, delay);
  }
}
