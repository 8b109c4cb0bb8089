import { describe, expect, it } from "vitest";
import { toSkiffError } from "../src/http-errors.ts";

describe("toSkiffError", () => {
  it("turns PostgreSQL's data exceptions that only input causes into 400 invalid_input, not 500", () => {
    for (const code of ["22021", "22P05", "22P02", "22003", "22007", "22008"]) {
      const e = toSkiffError(Object.assign(new Error("from postgres"), { code }));
      expect([code, e.code, e.status]).toEqual([code, "invalid_input", 400]);
      expect(e.message).not.toContain("from postgres");
    }
    for (const code of ["22012", "23505", "40001", "57014"])
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
