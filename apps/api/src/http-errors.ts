import { SkiffError } from "@skiff/protocol";

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
}

/**
 * PostgreSQL's data exceptions that only a value from the request can cause: text it cannot store
 * (NUL, an invalid escape in jsonb), a number past its column, a time it cannot read. The schemas
 * refuse all of these first; this is the backstop for a field a schema missed, so that it is a
 * 400 rather than a 500 (pg and PGlite both put the SQLSTATE in `code`).
 */
const INPUT_DATA_EXCEPTIONS = new Set([
  "22021", // character_not_in_repertoire: NUL in text
  "22P05", // untranslatable_character: \u0000 in jsonb
  "22P02", // invalid_text_representation: bad json escape (a lone surrogate), bad number
  "22003", // numeric_value_out_of_range: past integer
  "22007", // invalid_datetime_format
  "22008", // datetime_field_overflow
]);

/**
 * The database could not take the request now: the pool's wait for a connection ran out (a burst
 * larger than the pool on a loaded server), the server refused or dropped the connection, is
 * shutting down or has no connection left, or picked this transaction as a deadlock's victim. Each
 * is worth retrying in a moment, so it is a 503 with Retry-After, not an internal error.
 */
const DATABASE_BUSY_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "08000", // connection_exception
  "08001",
  "08003",
  "08004",
  "08006",
  "40P01", // deadlock_detected
  "40001", // serialization_failure
]);

export function databaseBusy(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string" && DATABASE_BUSY_CODES.has(e.code)) return true;
  return (
    typeof e?.message === "string" &&
    /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error/i.test(
      e.message,
    )
  );
}

/** Maps whatever a request threw to a catalog error; anything unknown is an internal error. */
export function toSkiffError(err: unknown): SkiffError {
  if (err instanceof SkiffError) return err;
  const e = err as FastifyLikeError;
  switch (e?.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new SkiffError("payload_too_large", "the request body is larger than the server accepts", {
        cause: err,
      });
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new SkiffError("unsupported_media_type", "send the body as application/json", { cause: err });
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return new SkiffError("invalid_json", "the body is empty but the content type says JSON", {
        cause: err,
      });
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
      return new SkiffError("invalid_input", "the Content-Length header does not match the body", {
        cause: err,
      });
    // The router's own refusals, which reach here once Fastify's `frameworkErrors` calls this.
    case "FST_ERR_BAD_URL":
      return new SkiffError("invalid_input", "the path is not valid percent-encoded UTF-8", { cause: err });
    case "FST_ERR_MAX_PARAM_LENGTH":
      return new SkiffError("invalid_input", "a path segment is longer than any id", { cause: err });
  }
  if (typeof e?.code === "string" && INPUT_DATA_EXCEPTIONS.has(e.code)) {
    return new SkiffError(
      "invalid_input",
      "a value in the request cannot be stored: out of range or not text",
      {
        cause: err,
      },
    );
  }
  if (err instanceof SyntaxError || (e?.statusCode === 400 && /JSON/i.test(e.message))) {
    return new SkiffError("invalid_json", "the body is not valid JSON", { cause: err });
  }
  if (e?.statusCode === 400) return new SkiffError("invalid_input", e.message, { cause: err });
  if (e?.statusCode === 413) return new SkiffError("payload_too_large", e.message, { cause: err });
  if (e?.statusCode === 415) return new SkiffError("unsupported_media_type", e.message, { cause: err });
  if (databaseBusy(err))
    return new SkiffError("not_ready", "the database is busy or unreachable; retry in a moment", {
      cause: err,
      details: { retryAfterSeconds: 1 },
    });
  return new SkiffError("internal", "internal error; the request id is in the server log", { cause: err });
}
