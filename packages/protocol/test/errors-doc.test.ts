import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CATALOG, ERROR_CODES, SkiffError } from "../src/index.ts";

const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");

describe("docs/errors.md", () => {
  it("lists exactly the catalog's codes with their HTTP status", () => {
    const rows = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [
      m[1],
      Number(m[2]),
    ]);
    expect(rows).toEqual(ERROR_CODES.map((code) => [code, ERROR_CATALOG[code].status]));
  });

  it("error bodies carry the code and never a stack", () => {
    const body = new SkiffError("lease_lost", "job job_1 was reassigned", {
      cause: new Error("inner"),
    }).toBody();
    expect(body).toEqual({ error: { code: "lease_lost", message: "job job_1 was reassigned" } });
    expect(JSON.stringify(body)).not.toContain("at ");
  });
});
