import { describe, expect, it } from "vitest";
import { SECRET_PREFIX, secretRefusal, secretsFromEnv } from "../src/secrets.ts";

describe("the secrets a worker serves", () => {
  it("are exactly its SKIFF_SECRET_<NAME> variables, under NAME; nothing else of its environment", () => {
    expect(SECRET_PREFIX).toBe("SKIFF_SECRET_");
    const env = {
      SKIFF_SECRET_NPM_TOKEN: "npm-abc",
      SKIFF_SECRET_A: "",
      SKIFF_SECRET_: "no name",
      SKIFF_TOKEN: "agent-token",
      DATABASE_URL: "postgres://x",
      skiff_secret_lower: "case matters",
      XSKIFF_SECRET_B: "not a prefix",
      SKIFF_SECRET_UNSET: undefined,
    };
    // toStrictEqual: an entry holding undefined (the unset variable) must not be there at all.
    expect(secretsFromEnv(env)).toStrictEqual({ NPM_TOKEN: "npm-abc", A: "" });
  });

  it("a refusal names what is missing and the rule, the same whatever else the worker holds", () => {
    expect(secretRefusal(["NPM_TOKEN"], "w1")).toBe(
      "secret NPM_TOKEN not held by worker w1: a worker serves only the secrets its operator gives it as SKIFF_SECRET_<NAME> variables",
    );
    expect(secretRefusal(["A", "B"], "w2")).toBe(
      "secrets A, B not held by worker w2: a worker serves only the secrets its operator gives it as SKIFF_SECRET_<NAME> variables",
    );
  });
});
