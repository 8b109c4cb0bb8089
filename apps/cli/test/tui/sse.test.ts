import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { waitFor } from "@skiff/testkit";
import { afterEach, describe, expect, it } from "vitest";
import type { FeedState } from "../../src/tui/data/backend.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "../../src/tui/data/backoff.ts";
import { SseFeed } from "../../src/tui/data/sse.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

let server: Server | null = null;
let feed: SseFeed | null = null;

afterEach(async () => {
  feed?.close();
  feed = null;
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r) ?? r(null));
  server = null;
});

/** A real loopback server whose n-th connection is answered by `handle`. */
async function serve(handle: Handler): Promise<{ url: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  server = createServer((req, res) => {
    requests.push(req);
    handle(req, res, requests.length);
  });
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/events`, requests };
}

function open(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(": hello\n\n");
}

function follow(url: string, endEvent?: string) {
  const events: { name: string; data: unknown; id: string | undefined }[] = [];
  const states: FeedState["kind"][] = [];
  feed = new SseFeed({
    url,
    authorization: "Bearer t0ken",
    events: ["tick", "end"],
    ...(endEvent ? { endEvent } : {}),
    backoff: { initialMs: 20, maxMs: 100, jitter: 0 },
    onEvent: (name, data, id) => events.push({ name, data, id }),
    onState: (s) => states.push(s.kind),
  }).start();
  return { events, states };
}

describe("the SSE feed", () => {
  it("reconnects after a drop and resumes from the last event id", async () => {
    const { url, requests } = await serve((_req, res, n) => {
      open(res);
      if (n === 1) {
        res.write('id: 1\nevent: tick\ndata: {"n":1}\n\n');
        res.write('id: 2\nevent: tick\ndata: {"n":2}\n\n');
        setImmediate(() => res.destroy());
      } else res.write('id: 3\nevent: tick\ndata: {"n":3}\n\n');
    });
    const { events, states } = follow(url);
    await waitFor("the third event", () => events.length === 3);
    expect(events.map((e) => [e.id, e.data])).toEqual([
      ["1", { n: 1 }],
      ["2", { n: 2 }],
      ["3", { n: 3 }],
    ]);
    expect(requests[0]?.headers.authorization).toBe("Bearer t0ken");
    expect(requests[0]?.headers["last-event-id"]).toBeUndefined();
    expect(requests[1]?.headers["last-event-id"]).toBe("2");
    expect(states).toEqual(["connecting", "live", "reconnecting", "live"]);
  });

  it("keeps trying while the server answers 503, and says unauthorised on 401", async () => {
    const { url } = await serve((_req, res, n) => {
      if (n === 1) res.writeHead(503).end("{}");
      else if (n === 2) res.writeHead(401).end("{}");
      else open(res);
    });
    const { states } = follow(url);
    await waitFor("live again", () => states.at(-1) === "live");
    expect(states).toEqual(["connecting", "reconnecting", "unauthorised", "live"]);
  });

  it("keeps trying while nothing listens", async () => {
    const { url } = await serve(() => {});
    server?.close();
    const { states } = follow(url.replace(/:\d+\//, ":1/"));
    await waitFor("two tries", () => states.filter((s) => s === "reconnecting").length >= 2);
    expect(states[0]).toBe("connecting");
  });

  it("stops after the end event and does not reconnect", async () => {
    const { url, requests } = await serve((_req, res) => {
      open(res);
      res.write('id: 1\nevent: tick\ndata: {"n":1}\n\n');
      res.write('event: end\ndata: {"state":"succeeded"}\n\n');
      res.end();
    });
    const { events, states } = follow(url, "end");
    await waitFor("the end", () => states.includes("ended"));
    expect(events.map((e) => e.name)).toEqual(["tick", "end"]);
    expect(requests).toHaveLength(1);
  });
});

describe("backoff", () => {
  it("doubles from the first delay up to the cap, with bounded jitter", () => {
    const none = { ...DEFAULT_BACKOFF, jitter: 0 };
    expect([0, 1, 2, 3, 4, 10].map((a) => backoffDelay(a, none))).toEqual([
      500, 1000, 2000, 4000, 5000, 5000,
    ]);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(400);
    expect(backoffDelay(0, DEFAULT_BACKOFF, () => 1)).toBe(600);
    expect(backoffDelay(20, DEFAULT_BACKOFF, () => 1)).toBe(5000);
  });
});
