import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ServiceGate } from "@skiff/testkit";
import { Client } from "undici";
import { z } from "zod";
import { detectComposeCommand } from "../../src/index.ts";

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
export const NODE_IMAGE = "skiff-test-node:latest";
/** The checkout, bind-mounted into the stand-in worker containers. */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url)).replace(/\/$/, "");

const run = promisify(execFile);

async function engineAnswers(): Promise<boolean> {
  const client = new Client("http://docker", { socketPath: DOCKER_SOCKET });
  try {
    const res = await client.request({ method: "GET", path: "/_ping", headersTimeout: 2_000 });
    await res.body.text();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

/** A Docker engine on its socket and a compose CLI (`docker compose` or `docker-compose`). */
export async function composeGate(): Promise<ServiceGate & { compose: string[] }> {
  if (!(await engineAnswers()))
    return {
      available: false,
      compose: [],
      missing:
        `Docker engine not reachable at ${DOCKER_SOCKET}; start it with ` +
        "`nohup dockerd --bridge=none --iptables=false >/tmp/dockerd.log 2>&1 &` or set DOCKER_SOCKET",
    };
  try {
    return { available: true, missing: null, compose: await detectComposeCommand() };
  } catch (err) {
    return { available: false, compose: [], missing: err instanceof Error ? err.message : String(err) };
  }
}

/** Builds the stand-in worker image (node and its libraries; nothing can be pulled here) unless it exists. */
export async function ensureNodeImage(): Promise<string> {
  const script = `${REPO_ROOT}/scripts/build-node-image.sh`;
  const { stdout } = await run("sh", [script], {
    env: { ...process.env, SKIFF_NODE_IMAGE: NODE_IMAGE },
    timeout: 170_000,
  });
  if (stdout.trim() !== "") console.info(stdout.trim());
  return NODE_IMAGE;
}

const Listed = z.array(z.object({ Id: z.string(), State: z.string() }));

/** Every container of a compose project, in any state. */
export async function projectContainers(project: string): Promise<{ id: string; state: string }[]> {
  const client = new Client("http://docker", { socketPath: DOCKER_SOCKET });
  try {
    const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }));
    const res = await client.request({
      method: "GET",
      path: `/v1.41/containers/json?all=true&filters=${filters}`,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`listing containers: HTTP ${res.statusCode}: ${text}`);
    return Listed.parse(JSON.parse(text)).map((c) => ({ id: c.Id, state: c.State }));
  } finally {
    await client.close();
  }
}

/** `compose -p P -f F down`, for cleanup. */
export async function composeDown(compose: string[], project: string, file: string): Promise<void> {
  const [bin, ...base] = compose;
  if (!bin) throw new Error("no compose command");
  await run(bin, [...base, "-p", project, "-f", file, "down", "--timeout", "2"], { timeout: 120_000 });
}
