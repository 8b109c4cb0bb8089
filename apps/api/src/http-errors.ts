import { SkiffError } from "@skiff/protocol";

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message: string;
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
  }
  if (err instanceof SyntaxError || (e?.statusCode === 400 && /JSON/i.test(e.message))) {
    return new SkiffError("invalid_json", "the body is not valid JSON", { cause: err });
  }
  if (e?.statusCode === 400) return new SkiffError("invalid_input", e.message, { cause: err });
  if (e?.statusCode === 413) return new SkiffError("payload_too_large", e.message, { cause: err });
  if (e?.statusCode === 415) return new SkiffError("unsupported_media_type", e.message, { cause: err });
  return new SkiffError("internal", "internal error; the request id is in the server log", { cause: err });
}
