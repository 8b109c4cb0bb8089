import { isFinal, parseOrThrow, SkiffError, TOPICS, Topic } from "@skiff/protocol";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { ApiContext, RouteDef } from "../context.ts";
import type { EventLog } from "../event-log.ts";
import { SseStream } from "../sse.ts";
import { logKey } from "../waiters.ts";
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

function lastEventId(req: FastifyRequest): number | undefined {
  const raw = req.headers["last-event-id"];
  if (typeof raw !== "string" || raw.trim() === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new SkiffError("invalid_input", "Last-Event-ID must be a sequence number");
  return n;
}

function open(ctx: ApiContext, reply: FastifyReply, paced = false): SseStream {
  if (ctx.state.shuttingDown)
    throw new SkiffError("not_ready", "the server is shutting down; reconnect to another replica");
  reply.hijack();
  const stream = new SseStream(reply.raw, {
    keepAliveMs: ctx.config.sseKeepAliveMs,
    maxBuffer: ctx.config.sseMaxBufferBytes,
    paced,
    stallMs: ctx.config.sseStallMs,
  });
  ctx.sse.add(stream);
  ctx.metrics.sseClients.inc();
  stream.onClose(() => ctx.metrics.sseClients.dec());
  return stream;
}

export function streamRoutes(ctx: ApiContext, events: EventLog): RouteDef[] {
  return [
    {
      method: "GET",
      url: "/v1/events",
      role: "viewer",
      async handler(req, reply) {
        const { topics } = parseOrThrow(EventsQuery, req.query, "query");
        const resumeFrom = lastEventId(req);
        const wanted = new Set(topics);
        const stream = open(ctx, reply);
        if (resumeFrom !== undefined) {
          const missed = events.since(resumeFrom);
          if (missed === null)
            stream.send("reset", { reason: "too far behind; reload from the REST endpoints" });
          else
            for (const e of missed) if (wanted.has(e.topic)) stream.send(e.event.name, e.event.payload, e.id);
        }
        stream.send("ready", { topics, lastEventId: events.lastId });
        const stop = events.listen((e) => {
          if (wanted.has(e.topic)) stream.send(e.event.name, e.event.payload, e.id);
        });
        stream.onClose(stop);
      },
    },
    {
      method: "GET",
      url: "/v1/jobs/:id/logs/stream",
      role: "viewer",
      async handler(req, reply) {
        const id = idParam(req);
        const query = parseOrThrow(LogStreamQuery, req.query, "query");
        let after = lastEventId(req) ?? query.after ?? 0;
        const job = await ctx.store.getJob(id);
        if (!job) throw new SkiffError("not_found", `no job ${id}`);
        const stream = open(ctx, reply, true);
        let running = false;
        let again = false;
        const pump = async () => {
          if (running) {
            again = true;
            return;
          }
          running = true;
          try {
            do {
              again = false;
              for (;;) {
                const lines = await ctx.store.listLogs(id, after, PAGE);
                // A page can be far bigger than sseMaxBufferBytes (1000 lines of up to 1 MiB): written
                // in one go it cut off even a fast follower, which then resumed at the same place and
                // was cut off again. So the stream is paced: the backlog goes at the client's pace.
                for (const line of lines) {
                  stream.send("line", line, line.seq);
                  await stream.drained();
                  if (stream.isClosed) break;
                }
                after = lines.at(-1)?.seq ?? after;
                if (lines.length < PAGE || stream.isClosed) break;
              }
              const now = await ctx.store.getJob(id);
              if (!now || isFinal(now.state)) {
                const more = await ctx.store.listLogs(id, after, 1);
                if (more.length > 0) {
                  again = true;
                  continue;
                }
                stream.send("end", {
                  jobId: id,
                  state: now?.state ?? "unknown",
                  exitCode: now?.exitCode ?? null,
                });
                stream.close();
                return;
              }
            } while (again && !stream.isClosed);
          } catch (err) {
            req.log.warn({ err, jobId: id }, "log stream failed; closing it so the client resumes");
            stream.close();
          } finally {
            running = false;
          }
        };
        const stop = ctx.bus.onWake((key) => {
          if (key === logKey(id)) void pump();
        });
        stream.onClose(stop);
        await pump();
      },
    },
  ];
}
