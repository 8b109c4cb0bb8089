import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["apps/*/test/**/*.test.ts", "packages/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: one worker per core keeps PostgreSQL, Docker and the tests from starving each other.
    maxWorkers: 2,
    pool: "forks",
    globalSetup: ["scripts/vitest-global-setup.ts"],
  },
});
