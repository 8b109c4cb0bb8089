import { EventSource, type FetchLike } from "eventsource";
import type { ApiClient, ApiError, ConnectionError } from "./client.ts";

export interface SseHandlers {
  /** Handlers by event name, given the parsed JSON data and the event id. */
  events: Record<string, (data: unknown, id: string | undefined) => void>;
  /** The connection dropped; the client reconnects by itself and resumes with Last-Event-ID. */
  onReconnecting?(): void;
  /** The connection (re)opened. */
  onOpen?(): void;
}

export interface SseSubscription {
  close(): void;
  /**
   * Resolves when `close()` is called; rejects when the server refuses the stream (401, 404, ...) or
   * a handler throws.
   */
  done: Promise<void>;
}

/** HTTP statuses worth another try while a stream is followed: the API restarting or a proxy hiccup. */
const RETRYABLE = new Set([502, 503, 504]);

/**
 * Opens an SSE stream from the API with the client's token. Drops are retried by `eventsource`,
 * which resumes from the last event id (the server sends the `retry:` delay); a refusal by the server
 * ends the subscription with the server's error, except while it is restarting (502/503/504), when
 * the stream is reopened from `resumeQuery(lastEventId)` after a pause.
 */
export function subscribe(
  client: ApiClient,
  path: string,
  query: Record<string, string | number | undefined>,
  handlers: SseHandlers,
  resumeQuery?: (lastEventId: string) => Record<string, string | number | undefined>,
): SseSubscription {
  let source: EventSource | null = null;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let lastId: string | undefined;
  let settle: { resolve: () => void; reject: (e: Error) => void } = { resolve() {}, reject() {} };
  const done = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });

  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(retryTimer);
    source?.close();
    settle.resolve();
  };

  const open = (q: Record<string, string | number | undefined>) => {
    let refusal: ApiError | ConnectionError | null = null;
    const authorizedFetch: FetchLike = async (url, init) => {
      const res = await fetch(url, {
        ...init,
        headers: { ...init.headers, authorization: client.authorization },
      });
      if (res.status !== 200) {
        const text = await res.text().catch(() => "");
        let data: unknown = text;
        try {
          data = JSON.parse(text);
        } catch {
          // not JSON: keep the text for the message
        }
        refusal = client.errorFrom(res.status, data);
      }
      return res;
    };
    const es = new EventSource(client.url(path, q), { fetch: authorizedFetch });
    source = es;
    for (const [name, handler] of Object.entries(handlers.events)) {
      es.addEventListener(name, (ev: MessageEvent) => {
        if (closed) return;
        if (ev.lastEventId) lastId = ev.lastEventId;
        let data: unknown;
        try {
          data = JSON.parse(String(ev.data));
        } catch {
          return;
        }
        try {
          handler(data, ev.lastEventId || undefined);
        } catch (e) {
          closed = true;
          clearTimeout(retryTimer);
          es.close();
          settle.reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    }
    es.addEventListener("open", () => handlers.onOpen?.());
    es.addEventListener("error", (ev) => {
      if (closed) return;
      if (es.readyState !== es.CLOSED) {
        handlers.onReconnecting?.();
        return;
      }
      const failed: ApiError | ConnectionError | null = refusal;
      if (failed && !("status" in failed && RETRYABLE.has(failed.status))) {
        closed = true;
        settle.reject(failed);
        return;
      }
      if (!failed) {
        closed = true;
        settle.reject(
          new Error(`the event stream from ${client.baseUrl} failed: ${ev.message ?? "no reason"}`),
        );
        return;
      }
      handlers.onReconnecting?.();
      retryTimer = setTimeout(() => {
        if (!closed) open(lastId !== undefined && resumeQuery ? resumeQuery(lastId) : q);
      }, 2000);
    });
  };

  open(query);
  return { close, done };
}
