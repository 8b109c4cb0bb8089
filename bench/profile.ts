// `pnpm bench:profile <throughput|heartbeats|claim> [--label NAME]`: runs one protocol workload
// against a real `skiff api` child process started with `node --cpu-prof`, then writes a flame graph
// (`docs/profiles/<workload>-<label>.svg`) and prints where the API's CPU time went.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestDatabase, TEST_REDIS_URL } from "@skiff/testkit";
import pg from "pg";
import { type CpuProfile, flameSvg, summarise, trimProfile } from "./flame.ts";
import { enqueueNoops, root, startApi } from "./lib.ts";
import { claimLatency, heartbeatCapacity, type Measured, protocolThroughput } from "./protocol.ts";

const workloads = ["throughput", "heartbeats", "claim"] as const;
type Workload = (typeof workloads)[number];

function usage(): never {
  process.stderr.write(
    "usage: pnpm bench:profile <throughput|heartbeats|claim> [--label NAME] [--out DIR] [--keep]\n" +
      "  Profiles the API process under one workload and writes <out>/<workload>-<label>.svg\n" +
      "  (default out: docs/profiles, label: now); --keep also writes the workload's .cpuprofile.\n",
  );
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) usage();
const workload = args[0] as Workload;
if (!workloads.includes(workload)) usage();
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const labelName = flag("--label") ?? "now";
const outDir = flag("--out") ?? join(root, "docs", "profiles");

const profDir = mkdtempSync(join(tmpdir(), "skiff-prof-"));
const database = await createTestDatabase({ empty: true });
const spawnedAt = performance.now();
const api = await startApi({
  command: "api",
  env: { DATABASE_URL: database.url, REDIS_URL: TEST_REDIS_URL, SKIFF_BUS_PREFIX: `prof${process.pid}` },
  nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "--cpu-prof-interval=250"],
});
const pool = new pg.Pool({ connectionString: database.url, max: 2 });
let measured: Measured;
let workloadAt = 0;
try {
  const agentToken = (await api.client.call("POST", "/v1/tokens", { name: "prof-agents", role: "agent" }))
    .token as string;
  process.stderr.write(`profile: running ${workload} against ${api.url}\n`);
  workloadAt = performance.now();
  if (workload === "throughput") {
    measured = await protocolThroughput(api, agentToken, 6000, (queue, n) => enqueueNoops(pool, queue, n));
  } else if (workload === "heartbeats") {
    measured = await heartbeatCapacity(api, agentToken, 6);
  } else {
    measured = await claimLatency(api, agentToken, 300);
  }
} finally {
  await pool.end();
  await api.stop();
  await database.drop();
}

const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`profile: the API wrote no .cpuprofile into ${profDir}`);
// The API's startup (module loading, migrations) is cut off: only the workload's samples count.
const profile = trimProfile(
  JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile,
  workloadAt - spawnedAt,
);
rmSync(profDir, { recursive: true, force: true });

const figure =
  workload === "claim"
    ? `claim p50 ${measured.extra?.p50?.toFixed(1)} ms, p99 ${measured.extra?.p99?.toFixed(1)} ms`
    : workload === "heartbeats"
      ? `${measured.value.toFixed(0)} heartbeats/s, p99 ${measured.extra?.p99?.toFixed(1)} ms`
      : `${measured.value.toFixed(0)} jobs/s`;
mkdirSync(outDir, { recursive: true });
const svg = join(outDir, `${workload}-${labelName}.svg`);
writeFileSync(svg, flameSvg(profile, `skiff api under the ${workload} workload (${labelName}): ${figure}`));

if (args.includes("--keep")) {
  const raw = join(outDir, `${workload}-${labelName}.cpuprofile`);
  writeFileSync(raw, JSON.stringify(profile));
  process.stderr.write(`profile: the workload's samples kept in ${raw} (open it in Chrome DevTools)\n`);
}
const s = summarise(profile);
const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const lines = [
  `${workload} (${labelName}): ${figure}; ${s.samples} samples`,
  "",
  "| owner | share of API CPU samples |",
  "| --- | --- |",
  ...s.byOwner.slice(0, 12).map((o) => `| ${o.owner} | ${pct(o.share)} |`),
  "",
  "| function (self time) | owner | share |",
  "| --- | --- | --- |",
  ...s.topSelf.map((f) => `| \`${f.name}\` | ${f.owner} | ${pct(f.share)} |`),
];
console.log(lines.join("\n"));
process.stderr.write(`profile: flame graph written to ${svg}\n`);
