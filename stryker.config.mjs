// Mutation testing of the safety walls: `pnpm test:mutation` (see docs/mutation.md).
// Not part of `pnpm test`: it takes minutes, and the sandboxes it writes live under .test-results/,
// which vitest's include patterns, biome and git all leave alone.
import { readFileSync } from "node:fs";

/**
 * The lines of `file` from the first line matching `start` to the line that closes the block opened
 * on the line matching `anchor` (default: `start`): the first later line holding only `}`, `};` or
 * `});` at the anchor's indentation. Found by content, not by number, so edits above a wall do not
 * shift what is mutated; a wall that was renamed or moved stops the run here, loudly.
 */
function section(file, start, anchor = start) {
  const lines = readFileSync(new URL(file, import.meta.url), "utf8").split("\n");
  const from = lines.findIndex((l) => start.test(l));
  const open = lines.findIndex((l, i) => i >= from && anchor.test(l));
  if (from < 0 || open < 0)
    throw new Error(`stryker.config.mjs: ${file} has no line matching ${start} / ${anchor}`);
  const indent = /^\s*/.exec(lines[open])?.[0] ?? "";
  const close = lines.findIndex(
    (l, i) => i > open && [`${indent}}`, `${indent}};`, `${indent}});`].includes(l),
  );
  if (close < 0) throw new Error(`stryker.config.mjs: no end for the block at ${file}:${open + 1}`);
  return `${file}:${from + 1}-${close + 1}`;
}

/**
 * Each wall: the code that holds it and the test files that attack it. Per mutant, Stryker runs
 * only the tests that executed the mutated code in the first run (coverageAnalysis "perTest"), so
 * listing a test file here costs one pass in the first run and nothing for mutants it never reaches.
 * Add a wall by adding an entry; `SKIFF_MUTATE=roles,lease pnpm test:mutation` runs some of them.
 */
const MODULES = {
  roles: {
    mutate: [
      section("packages/protocol/src/model.ts", /^export const ROLES\b/, /^export function roleAllows\(/),
    ],
    tests: ["packages/protocol/test/roles.test.ts", "apps/api/test/matrix.test.ts"],
  },
  guard: {
    // The refusals (401/403, audited) and the failure counting per token and per address.
    mutate: [
      section("apps/api/src/app.ts", /^\s*const tokenKey = /, /^\s*app\.addHook\("onResponse"/),
      section("apps/api/src/app.ts", /^\s*async function guard\(/),
    ],
    tests: [
      "apps/api/test/matrix.test.ts",
      "apps/api/test/ratelimit.test.ts",
      "apps/api/test/revocation.test.ts",
      "apps/api/test/guard.test.ts",
    ],
  },
  auth: {
    mutate: ["apps/api/src/auth.ts"],
    tests: [
      "apps/api/test/auth.test.ts",
      "apps/api/test/matrix.test.ts",
      "apps/api/test/revocation.test.ts",
      "apps/api/test/agent-scope.test.ts",
    ],
  },
  principals: {
    mutate: ["apps/api/src/principals.ts"],
    tests: [
      "apps/api/test/revocation.test.ts",
      "apps/api/test/matrix.test.ts",
      "apps/api/test/agent-scope.test.ts",
    ],
  },
  ratelimit: {
    mutate: ["apps/api/src/ratelimit.ts"],
    tests: ["apps/api/test/ratelimit.test.ts"],
  },
  lease: {
    mutate: ["packages/store/src/sql/lease.ts"],
    tests: [
      "packages/store/test/lease.test.ts",
      "packages/store/test/lease-owner.test.ts",
      "packages/store/test/lease-events.test.ts",
      "apps/api/test/lease-owner.test.ts",
    ],
  },
  audit: {
    mutate: ["packages/store/src/sql/audit.ts"],
    tests: [
      "packages/store/test/audit.test.ts",
      "packages/store/test/audit-verify.test.ts",
      "packages/store/test/audit-unicode.test.ts",
    ],
  },
  // The sandbox walls. Only code the tests call in-process can be mutated (a worker started as a
  // child process runs the unmutated copy), so these are the functions that decide confinement.
  bwrap: {
    // The command line: namespaces, capabilities, mounts, environment.
    mutate: [
      section("apps/worker/src/sandbox/bwrap.ts", /^function rootArgs\(/),
      section("apps/worker/src/sandbox/bwrap.ts", /^export function bwrapArgs\(/),
    ],
    tests: ["apps/worker/test/bwrap.test.ts", "apps/worker/test/hostile-bwrap.test.ts"],
  },
  docker: {
    // The container's HostConfig: read-only root, capabilities, no-new-privileges, limits, network.
    mutate: [section("apps/worker/src/sandbox/docker.ts", /^function containerSpec\(/)],
    tests: ["apps/worker/test/docker.test.ts"],
  },
  egress: {
    // The routes of a `network: on` sandbox: what it may reach.
    mutate: [
      section("apps/worker/src/sandbox/egress.ts", /^export function hostAddresses\(/),
      section("apps/worker/src/sandbox/egress.ts", /^export function routeBatch\(/),
    ],
    tests: ["apps/worker/test/hostile-bwrap.test.ts", "apps/worker/test/egress.test.ts"],
  },
  seccomp: {
    // The compiled filter (the syscall tables themselves are module constants: see docs/mutation.md).
    mutate: [
      section("apps/worker/src/sandbox/seccomp.ts", /^export function syscallTable\(/),
      section("apps/worker/src/sandbox/seccomp.ts", /^export function seccompFilter\(/),
      section("apps/worker/src/sandbox/seccomp.ts", /^export function assemble\(/),
    ],
    tests: ["apps/worker/test/seccomp.test.ts", "apps/worker/test/hostile-bwrap.test.ts"],
  },
  secrets: {
    // Which secrets a job may ask for, and how their copies in the output are masked.
    mutate: ["apps/worker/src/secrets.ts", "apps/worker/src/mask.ts"],
    tests: [
      "apps/worker/test/secrets.test.ts",
      "apps/worker/test/mask.test.ts",
      "apps/worker/test/hostile-secrets.test.ts",
    ],
  },
};

const chosen = (process.env.SKIFF_MUTATE ?? Object.keys(MODULES).join(","))
  .split(",")
  .map((name) => name.trim())
  .filter((name) => name !== "");
for (const name of chosen) {
  if (!MODULES[name])
    throw new Error(`SKIFF_MUTATE: no module "${name}"; known: ${Object.keys(MODULES).join(", ")}`);
}
const pick = (key) => [...new Set(chosen.flatMap((name) => MODULES[name][key]))];

/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  packageManager: "pnpm",
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "vitest.stryker.config.ts", related: true },
  mutate: pick("mutate"),
  testFiles: pick("tests"),
  coverageAnalysis: "perTest",
  // Static mutants (module-level constants) would each need every test file reloaded; they are
  // reported as ignored and listed in docs/mutation.md instead.
  ignoreStatic: true,
  // Two cores: one vitest per core, each running its test files one after another.
  concurrency: 2,
  timeoutMS: 20_000,
  dryRunTimeoutMinutes: 20,
  tempDirName: ".test-results/stryker-tmp",
  ignorePatterns: ["/.test-results", "/reports", "/docs", "/deploy", "/bench", "/template"],
  reporters: ["clear-text", "progress", "html", "json"],
  clearTextReporter: { allowColor: false, reportTests: false, reportMutants: true, reportScoreTable: true },
  htmlReporter: { fileName: ".test-results/mutation/index.html" },
  jsonReporter: { fileName: ".test-results/mutation/mutation.json" },
  thresholds: { high: 95, low: 90, break: null },
};
