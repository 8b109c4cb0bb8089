// The image's HEALTHCHECK: GET /healthz on the port of whatever `skiff` command is PID 1 (api and up:
// --port, 8787; controller: --port, 8788; worker: --health-port, 8789). SKIFF_HEALTH_URL overrides
// it. Exit 0 when there is nothing to probe (`--help`, a one-shot command, `--health-port 0`).
import { readFileSync } from "node:fs";

const DEFAULTS = {
  api: ["--port", 8787],
  up: ["--port", 8787],
  controller: ["--port", 8788],
  worker: ["--health-port", 8789],
};

function target() {
  if (process.env.SKIFF_HEALTH_URL) return process.env.SKIFF_HEALTH_URL;
  let argv = [];
  try {
    argv = readFileSync("/proc/1/cmdline", "utf8").split("\0").filter(Boolean);
  } catch {
    return null;
  }
  const command = argv.find((a) => a in DEFAULTS);
  if (!command) return null;
  const [flag, fallback] = DEFAULTS[command];
  const at = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  const given = at < 0 ? undefined : argv[at].includes("=") ? argv[at].split("=")[1] : argv[at + 1];
  const port = Number(given ?? fallback);
  return port > 0 ? `http://127.0.0.1:${port}/healthz` : null;
}

const url = target();
if (!url) process.exit(0);
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_500) });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  console.error(`healthcheck: ${url}: ${err.message}`);
  process.exit(1);
}
