import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { ServiceGate } from "@skiff/testkit";
import { Client } from "undici";

export const DOCKER_SOCKET = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
export const TEST_IMAGE = "skiff-test-busybox:3";

const script = fileURLToPath(new URL("../../../../scripts/build-test-image.sh", import.meta.url));

/** Whether the Docker engine answers on its socket; says how to start it when not. */
export async function dockerGate(): Promise<ServiceGate> {
  const client = new Client("http://docker", { socketPath: DOCKER_SOCKET });
  try {
    const res = await client.request({ method: "GET", path: "/_ping", headersTimeout: 2_000 });
    await res.body.text();
    if (res.statusCode === 200) return { available: true, missing: null };
  } catch {
    // unreachable; reported below
  } finally {
    await client.close();
  }
  return {
    available: false,
    missing:
      `Docker engine not reachable at ${DOCKER_SOCKET}; start it with ` +
      "`nohup dockerd --bridge=none --iptables=false >/tmp/dockerd.log 2>&1 &` or set DOCKER_SOCKET",
  };
}

/** Builds the busybox test image (nothing can be pulled here) unless it exists; returns its name. */
export async function ensureTestImage(): Promise<string> {
  const { stdout } = await promisify(execFile)("sh", [script], {
    env: { ...process.env, SKIFF_TEST_IMAGE: TEST_IMAGE },
    timeout: 170_000,
  });
  if (stdout.trim() !== "") console.info(stdout.trim());
  return TEST_IMAGE;
}
