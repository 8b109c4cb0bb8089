import { parseOrThrow } from "@skiff/protocol";
import type { FastifyRequest } from "fastify";
import { z } from "zod";

const Id = z.string().min(1).max(100);

export function idParam(req: FastifyRequest): string {
  return parseOrThrow(z.object({ id: Id }), req.params, "path").id;
}

export const Limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

/** An opaque keyset cursor for newest-first listings. */
export function encodeCursor(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
  } catch {
    return parseOrThrow(z.never({ error: "not a cursor this server issued" }), cursor, "cursor");
  }
}

/** The request body, or an empty object when the client sent none. */
export function bodyOf(req: FastifyRequest): unknown {
  return req.body ?? {};
}
