import { type LogLine, parseOrThrow, roleAllows, SkiffError, TOPICS, Topic } from "@skiff/protocol";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Principal } from "../auth.ts";
import type { ApiContext, RouteDef } from "../context.ts";
import type { EventFeed, LoggedEvent } from "../event-log.ts";
import { SseStream, sseFrame } from "../sse.ts";
import { LOG_KEY_PREFIX } from "../waiters.ts";
import { idParam } from "./params.ts";

const EventsQuery = z.strictObject({
  topics: z
    .string()
    .max(200)
    .optional()
    .transform((s) => (s ? s.split(",").map((t) => t.trim()) : [...TOPICS]))
    .pipe(z.array(Topic).min(1)),
});
const LogStreamQuery = z.strictObject({ after: z.coerce.number().int().min(0).optional() });
const PAGE = 1000;
/** How often an idle log follower asks the shared reader to look for lines it was not woken for. */
const RECHECK_MS = 5_000;
/** About this much of a follower's lines is written at once before waiting for the socket to drain. */
const CHUNK_CHARS = 64 * 1024;
/** The most written at once to a paced client: well under the buffer it may fall behind by, so one write never cuts it off. */
const chunkCharsOf = (ctx: ApiContext) => Math.min(CHUNK_CHARS, Math.floor(ctx.config.sseMaxBufferBytes / 4));
/** Each line's SSE frame, made once however many followers send it. */
const frames = new WeakMap<LogLine, string>();
function frameOf(line: LogLine): string {
  let frame = frames.get(line);
  if (frame === undefined) {
    frame = sseFrame("line", line, line.seq);
    frames.set(line, frame);
  }
  return frame;
}

function lastEventId(req: FastifyRequest): number | undefined {
  const raw = req.headers["last-event-id"];
  if (typeof raw !== "string" || raw.trim() === "") return undefined;
  const n = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new SkiffError("invalid_input", "Last-Event-ID must be a sequence number");
  return n;
}

function open(ctx: ApiContext, reply: FastifyReply, who: Principal, paced = false): SseStream {
  if (ctx.state.shuttingDown)
    throw new SkiffError("not_ready", "the server is shutting down; reconnect to another replica");
  const limit = ctx.config.sseMaxStreamsPerToken;
  if (ctx.sse.openFor(who.tokenId) >= limit)
    throw new SkiffError(
      "rate_limited",
      `token ${who.name} already holds ${limit} open streams on this replica (sseMaxStreamsPerToken); ` +
        "close one, or give each console or script a token of its own",
    );
  reply.hijack();
  const stream = new SseStream(reply.raw, {
    keepAliveMs: ctx.config.sseKeepAliveMs,
    maxBuffer: ctx.config.sseMaxBufferBytes,
    paced,
    stallMs: ctx.config.sseStallMs,
  });
  ctx.sse.add(stream, who.tokenId);
  ctx.metrics.sseClients.inc();
  stream.onClose(() => ctx.metrics.sseClients.dec());
  return stream;
}

export function streamRoutes(ctx: ApiContext, events: EventFeed): RouteDef[] {
  // New lines for a job (or its end): its shared reader, if anyone here follows it, reads them.
  ctx.bus.onWake((key) => {
    if (key.startsWith(LOG_KEY_PREFIX)) ctx.logTails.wake(key.slice(LOG_KEY_PREFIX.length));
  });
  return [
    {
      method: "GET",
      url: "/v1/events",
      role: "viewer",
      async handler(req, reply, who) {
        const asked = parseOrThrow(EventsQuery, req.query, "query").topics;
        // The audit log needs the operator role (GET /v1/audit); a viewer's stream leaves that topic
        // out rather than failing, and `ready` says which topics it got.
        const topics = roleAllows(who.role, "operator") ? asked : asked.filter((t) => t !== "audit");
        const resumeFrom = lastEventId(req);
        const wanted = new Set(topics);
        const stream = open(ctx, reply, who);
        // Listening starts before the backlog is read, and what arrives meanwhile waits, so nothing
        // falls between the two and nothing is sent twice: ids only go up.
        let sent = resumeFrom ?? Number.POSITIVE_INFINITY;
        let held: LoggedEvent[] | null = [];
        const frames = (batch: LoggedEvent[]) => {
          let chunk = "";
          for (const e of batch) {
            if (e.id <= sent) continue;
            sent = e.id;
            if (wanted.has(e.topic)) chunk += e.frame;
          }
          return chunk;
        };
        const stop = events.listen((batch) => {
          if (held) held.push(...batch);
          else {
            const chunk = frames(batch);
            if (chunk !== "") stream.sendFrames(chunk);
          }
        });
        stream.onClose(stop);
        try {
          await events.started;
          if (resumeFrom === undefined) sent = events.lastId;
          else {
            // The backlog goes a page at a time at the client's pace: written at once, a long one
            // passed sseMaxBufferBytes and cut the client off on every try, so it never caught up.
            for (let first = true; !stream.isClosed; first = false) {
              const page = await events.since(sent, PAGE);
              if (page === null) {
                if (!first) break;
                sent = events.lastId;
                stream.send("reset", { reason: "too far behind; reload from the REST endpoints" }, sent);
                break;
              }
              const chunk = frames(page);
              const piece = chunkCharsOf(ctx);
              for (let i = 0; i < chunk.length && !stream.isClosed; i += piece) {
                stream.sendFrames(chunk.slice(i, i + piece));
                await stream.drained();
              }
              if (page.length < PAGE) break;
            }
          }
        } catch (err) {
          req.log.warn({ err }, "could not read the events a client missed; it reconnects");
          stream.close();
          return;
        }
        // With an id, so that even a client whose topics saw nothing resumes from here next time.
        const at = Math.max(sent, 0);
        stream.send("ready", { topics, lastEventId: at }, at);
        const waiting = held;
        held = null;
        const chunk = frames(waiting);
        if (chunk !== "") stream.sendFrames(chunk);
      },
    },
    {
      method: "GET",
      url: "/v1/jobs/:id/logs/stream",
      role: "viewer",
      async handler(req, reply, who) {
        const id = idParam(req);
        const query = parseOrThrow(LogStreamQuery, req.query, "query");
        let after = lastEventId(req) ?? query.after ?? 0;
        const job = await ctx.store.getJob(id);
        if (!job) throw new SkiffError("not_found", `no job ${id}`);
        const stream = open(ctx, reply, who, true);
        const tail = ctx.logTails.join(id);
        stream.onClose(() => ctx.logTails.leave(tail));
        // A page can be far bigger than sseMaxBufferBytes (1000 lines of up to 1 MiB): written in
        // one go it cut off even a fast follower, which then resumed at the same place and was cut
        // off again. So the stream is paced: the backlog goes at the client's pace.
        // Lines go out in chunks of about 64 KiB, each line's frame made once for all the job's
        // followers (they share the reader's line objects): with hundreds of followers a write
        // and a JSON.stringify per line and follower cost the API more than everything else.
        const chunkChars = chunkCharsOf(ctx);
        const send = async (lines: LogLine[]) => {
          let chunk = "";
          for (const line of lines) {
            chunk += frameOf(line);
            after = line.seq;
            if (chunk.length >= chunkChars) {
              stream.sendFrames(chunk);
              chunk = "";
              await stream.drained();
              if (stream.isClosed) return;
            }
          }
          if (chunk !== "") {
            stream.sendFrames(chunk);
            await stream.drained();
          }
        };
        try {
          while (!stream.isClosed) {
            const held = tail.linesAfter(after);
            if (held === null) {
              // Behind what the shared reader holds: this follower reads its backlog itself.
              const lines = await ctx.store.listLogs(id, after, PAGE);
              await send(lines);
              if (lines.length < PAGE) {
                await tail.caughtUp();
                // Past the end the client claimed (an `after` beyond every line): wait here
                // rather than ask the store again at once.
                if (
                  lines.length === 0 &&
                  tail.linesAfter(after) === null &&
                  !(await tail.changed(after, RECHECK_MS))
                )
                  tail.refresh();
              }
              continue;
            }
            await send(held);
            const end = tail.endAt(after);
            if (end) {
              stream.send("end", { jobId: id, state: end.state, exitCode: end.exitCode });
              stream.close();
              return;
            }
            // Woken by the shared reader; every few seconds it is asked to look anyway, in case a
            // wake-up was missed (the bus was away).
            if (held.length === 0 && !(await tail.changed(after, RECHECK_MS))) tail.refresh();
          }
        } catch (err) {
          req.log.warn({ err, jobId: id }, "log stream failed; closing it so the client resumes");
          stream.close();
        }
      },
    },
  ];
}
