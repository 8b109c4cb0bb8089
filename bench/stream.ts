import { percentile } from "./lib.ts";

export interface SseEvent {
  event: string;
  data: string;
}

/** Reads an SSE stream, calling `onEvent` for each event, until `signal` aborts. */
export async function followSse(
  url: string,
  token: string,
  onEvent: (e: SseEvent) => boolean | undefined,
  signal: AbortSignal,
): Promise<void> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
  if (!res.ok || !res.body) throw new Error(`SSE ${url}: ${res.status}`);
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      for (let idx = buffer.indexOf("\n\n"); idx >= 0; idx = buffer.indexOf("\n\n")) {
        const block = buffer.slice(0, idx);
        buffer = buffer.slice(idx + 2);
        let event = "message";
        let data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data && onEvent({ event, data }) === true) return;
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

export function summarizeLatencies(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}
