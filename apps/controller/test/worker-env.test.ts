import { describe, expect, it } from "vitest";
import { workerEnv } from "../src/scalers/process.ts";

describe("the environment the process scaler gives its workers", () => {
  it("passes the basics and the operator's SKIFF_SECRET_ variables, never the controller's credentials", () => {
    const env = workerEnv({
      PATH: "/usr/bin:/bin",
      HOME: "/home/skiff",
      SKIFF_HOME: "/var/lib/skiff",
      SKIFF_SECRET_NPM_TOKEN: "npm_abcdef",
      DATABASE_URL: "postgres://skiff:pw@db/skiff",
      REDIS_URL: "redis://cache:6379",
      SKIFF_TOKEN: "skf_controller-token",
      AWS_SECRET_ACCESS_KEY: "not-for-jobs",
    });
    expect(env).toEqual({
      PATH: "/usr/bin:/bin",
      HOME: "/home/skiff",
      SKIFF_HOME: "/var/lib/skiff",
      SKIFF_SECRET_NPM_TOKEN: "npm_abcdef",
    });
  });
});
