/**
 * The error catalog: every error the API returns carries one of these stable codes.
 * `docs/errors.md` is kept in step with this table by a test.
 */
export const ERROR_CATALOG = {
  invalid_input: {
    status: 400,
    summary: "The body, query or path failed validation; `details` names each field.",
  },
  invalid_json: { status: 400, summary: "The body is not valid JSON." },
  unsupported_media_type: { status: 415, summary: "The body is not `application/json`." },
  unauthorized: {
    status: 401,
    summary: "No token, an unknown or revoked token, or the credential of an agent that is gone.",
  },
  forbidden: {
    status: 403,
    summary: "The token's role is below what the endpoint needs, or the token may not act as that agent.",
  },
  out_of_scope: {
    status: 403,
    summary: "The agent token's scope does not cover the queue or label the agent asked for.",
  },
  not_found: { status: 404, summary: "No such job, agent, token or route." },
  lease_lost: {
    status: 409,
    summary: "The lease epoch is stale: the job was reassigned or finished; stop working on it.",
  },
  invalid_transition: {
    status: 409,
    summary: "The job's state does not allow this action (e.g. retrying a running job).",
  },
  already_final: { status: 409, summary: "The job already reached a final state." },
  not_leader: { status: 409, summary: "A fleet change carried a stale leader epoch." },
  conflict: { status: 409, summary: "The resource changed concurrently or already exists." },
  payload_too_large: { status: 413, summary: "The body exceeds the size limit." },
  rate_limited: {
    status: 429,
    summary: "Too many failed requests for this token or address; retry after `Retry-After` seconds.",
  },
  internal: { status: 500, summary: "An unexpected server error; the request id is in the log." },
  not_ready: { status: 503, summary: "The server is starting, shutting down, or lost its database or bus." },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export const ERROR_CODES = Object.keys(ERROR_CATALOG) as ErrorCode[];

export function statusOf(code: ErrorCode): number {
  return ERROR_CATALOG[code].status;
}

/** One issue of a validation failure, with the dotted path of the offending field. */
export interface FieldIssue {
  path: string;
  message: string;
}

export class SkiffError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "SkiffError";
    this.code = code;
    this.status = statusOf(code);
    this.details = options.details;
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: unknown };
}
