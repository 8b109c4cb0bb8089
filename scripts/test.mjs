#!/usr/bin/env node
// Runs the whole test suite with vitest and ends with one summary line, `N passed, N failed[, N skipped]`,
// which CI reads. Extra arguments go to vitest (e.g. a path filter).
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const outDir = join(root, ".test-results");
const outFile = join(outDir, "vitest.json");
mkdirSync(outDir, { recursive: true });
rmSync(outFile, { force: true });

const args = [
  "exec",
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${outFile}`,
  ...process.argv.slice(2),
];
const child = spawn("pnpm", args, { cwd: root, stdio: "inherit" });
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));

child.on("exit", (code, signal) => {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    const report = JSON.parse(readFileSync(outFile, "utf8"));
    passed = report.numPassedTests;
    failed = report.numFailedTests;
    skipped = report.numPendingTests + report.numTodoTests;
    // A file that fails to load, or whose beforeAll/afterAll throws, fails without a failed test in
    // the counts (its tests show as skipped); count each such file as a failure so it cannot hide.
    for (const file of report.testResults ?? []) {
      const anyTestFailed = (file.assertionResults ?? []).some((t) => t.status === "failed");
      if (file.status === "failed" && !anyTestFailed) failed += 1;
    }
  } catch (err) {
    console.error(`test: no report from vitest (${err.message})`);
    failed = Math.max(failed, 1);
  }
  const tail = skipped > 0 ? `, ${skipped} skipped` : "";
  console.log(`${passed} passed, ${failed} failed${tail}`);
  process.exit(code === 0 && failed === 0 && signal === null ? 0 : 1);
});
