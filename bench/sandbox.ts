import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  bwrapArgs,
  createBwrapDriver,
  createDockerDriver,
  type SandboxDriver,
  type StepRun,
} from "@skiff/worker";
import { median } from "./lib.ts";

const exec = promisify(execFile);
export const TEST_IMAGE = "skiff-test-busybox:3";

function step(workspace: string, i: number): StepRun {
  return {
    jobId: `job_bench_${process.pid}_${i}`,
    workerName: "bench",
    stepIndex: 0,
    command: "true",
    env: {},
    workspace,
    network: "off",
    limits: { memoryMb: 256, cpus: 1, pids: 64 },
    image: TEST_IMAGE,
    onLine: () => {},
    signal: new AbortController().signal,
    timeoutMs: 30_000,
    graceMs: 1_000,
  };
}

function spawnTimed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} exited ${code}`)),
    );
  });
}

async function driverTimed(driver: SandboxDriver, s: StepRun): Promise<number> {
  const t0 = performance.now();
  const end = await driver.run(s);
  if (end.outcome !== "succeeded") throw new Error(`bench step failed: ${JSON.stringify(end)}`);
  return performance.now() - t0;
}

export interface Overhead {
  raw: number;
  skiff: number;
  ratio: number;
}

/** Skiff's bwrap driver vs the same bwrap command line run bare, alternating, `n` pairs. */
export async function bwrapOverhead(n: number): Promise<Overhead> {
  const workspace = mkdtempSync(join(tmpdir(), "skiff-bench-ws-"));
  const driver = createBwrapDriver();
  const raw: number[] = [];
  const skiff: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = step(workspace, i);
      raw.push(await spawnTimed("bwrap", bwrapArgs(s, {})));
      skiff.push(await driverTimed(driver, s));
    }
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
  return { raw: median(raw), skiff: median(skiff), ratio: median(skiff) / median(raw) };
}

/** Skiff's Docker driver vs `docker run --rm --network none IMAGE true`, alternating. */
export async function dockerOverhead(n: number): Promise<Overhead> {
  await exec("docker", ["image", "inspect", TEST_IMAGE]);
  const workspace = mkdtempSync(join(tmpdir(), "skiff-bench-ws-"));
  const driver = createDockerDriver({ defaultImage: TEST_IMAGE, onlineNetwork: "host" });
  const raw: number[] = [];
  const skiff: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      raw.push(await spawnTimed("docker", ["run", "--rm", "--network", "none", TEST_IMAGE, "true"]));
      skiff.push(await driverTimed(driver, step(workspace, i)));
    }
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
  return { raw: median(raw), skiff: median(skiff), ratio: median(skiff) / median(raw) };
}
