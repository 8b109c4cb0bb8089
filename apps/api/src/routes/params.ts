import { parseOrThrow, refuseUnstorable, SkiffError } from "@skiff/protocol";
import type { FastifyRequest } from "fastify";
import { z } from "zod";

const Id = z.string().min(1).max(100);
// Built once: zod compiles an object schema on its first parse, so a schema made per call would be
// compiled per request (it showed in the protocol profile).
const IdPath = z.object({ id: Id }).superRefine(refuseUnstorable);

export function idParam(req: FastifyRequest): string {
  return parseOrThrow(IdPath, req.params, "path").id;
}

export const Limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);

/** An opaque keyset cursor for newest-first listings. */
export function encodeCursor(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

/**
 * Decodes a cursor from `encodeCursor`, or refuses it with 400 `invalid_input` naming `cursor`: a
 * client can send any string, and what it decodes to goes into SQL, so `schema` must admit only
 * what the query can take.
 */
export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    raw = undefined;
  }
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const message = "not a cursor this server issued; start again without one";
  throw new SkiffError("invalid_input", `invalid cursor: ${message}`, {
    details: { issues: [{ path: "cursor", message }] },
  });
}

/** The request body, or an empty object when the client sent none. */
export function bodyOf(req: FastifyRequest): unknown {
  return req.body ?? {};
}
