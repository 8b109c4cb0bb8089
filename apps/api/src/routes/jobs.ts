import {
  isFinal,
  type Job,
  JobCancelBody,
  JobSpec,
  JobState,
  parseOrThrow,
  refuseUnstorable,
  SkiffError,
  Timestamp,
} from "@skiff/protocol";
import { z } from "zod";
import { type ApiContext, actorOf, type RouteDef } from "../context.ts";
import { logKey } from "../waiters.ts";
import { bodyOf, decodeCursor, encodeCursor, idParam, Limit } from "./params.ts";

const ListQuery = z
  .strictObject({
    state: JobState.optional(),
    queue: z.string().max(100).optional(),
    q: z.string().max(200).optional(),
    limit: Limit(500, 50),
    cursor: z.string().max(500).optional(),
  })
  .superRefine(refuseUnstorable);
// Both go into the keyset comparison: `c` is cast to timestamptz, `i` compared with an id.
const JobCursor = z.object({ c: Timestamp, i: z.string().min(1).max(100) }).superRefine(refuseUnstorable);
const LogsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).default(0),
  limit: Limit(10_000, 1000),
});

/** Wakes the claimers of a new job's queue on every replica (its events are in the log already). */
async function announceNewJob(ctx: ApiContext, job: Job): Promise<void> {
  await ctx.bus.wake(job.queue).catch((err) => ctx.log.warn({ err }, "could not wake claimers"));
}

export function jobRoutes(ctx: ApiContext): RouteDef[] {
  return [
    {
      method: "POST",
      url: "/v1/jobs",
      role: "operator",
      mutating: true,
      async handler(req, reply, who) {
        const spec = parseOrThrow(JobSpec, req.body, "job spec");
        const { value: job } = await ctx.store.submitJob(spec, actorOf(req, who));
        await announceNewJob(ctx, job);
        reply.code(201);
        return job;
      },
    },
    {
      method: "GET",
      url: "/v1/jobs",
      role: "viewer",
      async handler(req) {
        const query = parseOrThrow(ListQuery, req.query, "query");
        const before = query.cursor ? decodeCursor(query.cursor, JobCursor) : undefined;
        const items = await ctx.store.listJobs({
          state: query.state,
          queue: query.queue,
          text: query.q,
          limit: query.limit,
          before: before ? { createdAt: before.c, id: before.i } : undefined,
        });
        const last = items.at(-1);
        const nextCursor =
          items.length === query.limit && last ? encodeCursor({ c: last.createdAt, i: last.id }) : null;
        return { items, nextCursor };
      },
    },
    {
      method: "GET",
      url: "/v1/jobs/:id",
      role: "viewer",
      async handler(req) {
        const id = idParam(req);
        const job = await ctx.store.getJob(id);
        if (!job) throw new SkiffError("not_found", `no job ${id}`);
        return job;
      },
    },
    {
      method: "POST",
      url: "/v1/jobs/:id/cancel",
      role: "operator",
      mutating: true,
      async handler(req, _reply, who) {
        const id = idParam(req);
        const body = parseOrThrow(JobCancelBody, bodyOf(req), "cancel body");
        const { value: res } = await ctx.store.cancelJob(id, body.reason, actorOf(req, who));
        if (!res.ok) {
          if (res.reason === "not_found") throw new SkiffError("not_found", `no job ${id}`);
          throw new SkiffError(
            "invalid_transition",
            `job ${id} is ${res.job?.state}; only queued or running jobs can be canceled`,
          );
        }
        if (res.changed && isFinal(res.job.state)) await ctx.bus.wake(logKey(id)).catch(() => {});
        return res.job;
      },
    },
    {
      method: "POST",
      url: "/v1/jobs/:id/retry",
      role: "operator",
      mutating: true,
      async handler(req, reply, who) {
        const id = idParam(req);
        parseOrThrow(z.strictObject({}), bodyOf(req), "retry body");
        const { value: res } = await ctx.store.retryJob(id, actorOf(req, who));
        if (!res.ok) {
          if (res.reason === "not_found") throw new SkiffError("not_found", `no job ${id}`);
          throw new SkiffError(
            "invalid_transition",
            `job ${id} is ${res.job?.state}; only finished jobs can be retried`,
          );
        }
        const job = res.job;
        await announceNewJob(ctx, job);
        reply.code(201);
        return job;
      },
    },
    {
      method: "GET",
      url: "/v1/jobs/:id/logs",
      role: "viewer",
      async handler(req) {
        const id = idParam(req);
        const query = parseOrThrow(LogsQuery, req.query, "query");
        const job = await ctx.store.getJob(id);
        if (!job) throw new SkiffError("not_found", `no job ${id}`);
        const lines = await ctx.store.listLogs(id, query.after, query.limit);
        return { jobId: id, state: job.state, lines, nextAfter: lines.at(-1)?.seq ?? query.after };
      },
    },
  ];
}
