import { describeWith, pgGate } from "@skiff/testkit";
import { describe, expect, it } from "vitest";
import { toSkiffError } from "../src/http-errors.ts";
import { hello, startTestApi } from "./harness.ts";

describe("toSkiffError", () => {
  it("turns PostgreSQL's data exceptions that only input causes into 400 invalid_input, not 500", () => {
    for (const code of ["22021", "22P05", "22P02", "22003", "22007", "22008"]) {
      const e = toSkiffError(Object.assign(new Error("from postgres"), { code }));
      expect([code, e.code, e.status]).toEqual([code, "invalid_input", 400]);
      expect(e.message).not.toContain("from postgres");
    }
    for (const code of ["22012", "23505", "57014"])
      expect(toSkiffError({ code, message: "x" }).code).toBe("internal");
  });

  it("maps the router's own refusals (once app.ts hands them over) to invalid_input", () => {
    for (const code of ["FST_ERR_BAD_URL", "FST_ERR_MAX_PARAM_LENGTH"])
      expect(toSkiffError({ code, message: "x", statusCode: 400 })).toMatchObject({
        code: "invalid_input",
        status: 400,
      });
  });
});

describe("a database that cannot take the request now", () => {
  it("is a 503 not_ready with a retry hint, never a 500: deadlock, lost or refused connection, pool wait", () => {
    const busy = [
      { code: "40P01", message: "deadlock detected" },
      { code: "40001", message: "could not serialize access" },
      { code: "57P01", message: "terminating connection due to administrator command" },
      { code: "53300", message: "sorry, too many clients already" },
      { code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:5432" },
      { message: "timeout exceeded when trying to connect" },
      { message: "Connection terminated unexpectedly" },
    ];
    for (const err of busy) {
      const e = toSkiffError(Object.assign(new Error(err.message), err));
      expect([err.message, e.code, e.status, e.details]).toEqual([
        err.message,
        "not_ready",
        503,
        { retryAfterSeconds: 1 },
      ]);
      expect(e.message).toBe("the database is busy or unreachable; retry in a moment");
    }
  });
});

describeWith(await pgGate(), "the API when its PostgreSQL pool is exhausted [pg]", () => {
  it("a request that waited out the pool gets 503 and Retry-After, and the job is not half-written", async () => {
    const t = await startTestApi({ adapter: "pg", poolSize: 1 });
    try {
      // The one connection is busy for longer than a request waits for it (5 s).
      const hog = t.store.db.query("select pg_sleep(7)");
      const res = await fetch(`${t.url}/v1/jobs`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.tokens.operator}`, "content-type": "application/json" },
        body: JSON.stringify(hello("default")),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(await res.json()).toMatchObject({ error: { code: "not_ready" } });
      await hog;
      // Nothing of it was stored: the pool refused before any statement ran.
      expect((await t.store.listJobs({ limit: 10 })).length).toBe(0);
      const again = await t.call("POST", "/v1/jobs", { token: t.tokens.operator, body: hello("default") });
      expect(again.status).toBe(201);
    } finally {
      await t.close();
    }
  }, 30_000);
});
