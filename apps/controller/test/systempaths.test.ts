import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describeWith } from "@skiff/testkit";
import { Client } from "undici";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type SystemPathsProxy, startSystemPathsProxy, translateCreate } from "../src/scalers/systempaths.ts";
import { composeGate, DOCKER_SOCKET, ensureNodeImage } from "./support/docker-compose.ts";

/**
 * The engine proxy the compose scaler puts in front of compose v1: against the real engine, a
 * container asked for with `systempaths=unconfined` is refused when sent as written (what v1 does)
 * and created with no masked /proc paths through the proxy (what v2 and the Docker CLI send).
 */
const run = promisify(execFile);

describeWith(await composeGate(), "compose v1's systempaths=unconfined, through the engine proxy", () => {
  let proxy: SystemPathsProxy;
  let image = "";
  const created: string[] = [];
  const engine = new Client("http://docker", { socketPath: DOCKER_SOCKET });

  beforeAll(async () => {
    image = await ensureNodeImage();
    proxy = await startSystemPathsProxy(DOCKER_SOCKET);
  }, 200_000);

  afterAll(async () => {
    for (const id of created)
      await engine
        .request({ method: "DELETE", path: `/v1.41/containers/${id}?force=true` })
        .then((r) => r.body.text());
    await proxy?.close();
    await engine.close();
  });

  const create = async (socketPath: string, securityOpt: string[]) => {
    const client = new Client("http://docker", { socketPath });
    try {
      const res = await client.request({
        method: "POST",
        path: "/v1.41/containers/create",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          Image: image,
          Cmd: ["true"],
          HostConfig: { NetworkMode: "none", SecurityOpt: securityOpt },
        }),
      });
      const body = (await res.body.json()) as { Id?: string; message?: string };
      if (body.Id) created.push(body.Id);
      return { status: res.statusCode, body };
    } finally {
      await client.close();
    }
  };

  const hostConfig = async (id: string) => {
    const res = await engine.request({ method: "GET", path: `/v1.41/containers/${id}/json` });
    return ((await res.body.json()) as { HostConfig: Record<string, any> }).HostConfig;
  };

  it("the engine refuses the option as compose v1 sends it", async () => {
    const direct = await create(DOCKER_SOCKET, ["no-new-privileges", "systempaths=unconfined"]);
    expect(direct.status).toBeGreaterThanOrEqual(400);
    expect(direct.body.message).toContain("systempaths=unconfined");
  });

  it("through the proxy the container is created with nothing masked, its other options kept", async () => {
    const viaProxy = await create(proxy.socketPath, ["no-new-privileges", "systempaths=unconfined"]);
    expect(viaProxy.status, JSON.stringify(viaProxy.body)).toBe(201);
    const host = await hostConfig(viaProxy.body.Id ?? "");
    expect(host.MaskedPaths).toEqual([]);
    expect(host.ReadonlyPaths).toEqual([]);
    expect(host.SecurityOpt).toEqual(["no-new-privileges"]);
  });

  it("a container without the option keeps the engine's masks, and other requests pass unchanged", async () => {
    const plain = await create(proxy.socketPath, ["no-new-privileges"]);
    expect(plain.status).toBe(201);
    expect((await hostConfig(plain.body.Id ?? "")).MaskedPaths).toContain("/proc/kcore");
    const client = new Client("http://docker", { socketPath: proxy.socketPath });
    try {
      const ping = await client.request({ method: "GET", path: "/_ping" });
      expect(ping.statusCode).toBe(200);
      expect(await ping.body.text()).toBe("OK");
    } finally {
      await client.close();
    }
    // The Docker CLI through it: `run` waits for the headers of a long answer before it starts the
    // container; `exec` upgrades the connection with a body; a missing container's attach is a 404.
    const cli = (args: string[]) =>
      run("docker", args, {
        env: { ...process.env, DOCKER_HOST: `unix://${proxy.socketPath}` },
        timeout: 60_000,
      });
    const ran = await cli(["run", "--rm", "--network", "none", image, "/bin/sh", "-c", "sleep 1; echo ran"]);
    expect(ran.stdout.trim()).toBe("ran");
    const started = (await cli(["run", "-d", "--network", "none", image, "sleep", "30"])).stdout.trim();
    created.push(started);
    expect((await cli(["exec", started, "echo", "inside"])).stdout.trim()).toBe("inside");
    await expect(cli(["attach", "--no-stdin", "skiff-no-such-container"])).rejects.toThrow(
      /No such container/,
    );
    // A body that is not JSON goes to the engine as it came, for the engine to refuse.
    expect(translateCreate(Buffer.from("{not json")).toString()).toBe("{not json");
  });
});
