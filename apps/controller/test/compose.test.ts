import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Api, buildApi, hashToken, newTokenSecret } from "@skiff/api";
import { createBus } from "@skiff/bus";
import { openStore, type Store } from "@skiff/store";
import { describeWith, waitFor } from "@skiff/testkit";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  Controller,
  composeWorkerName,
  createComposeScaler,
  mintWorkerToken,
  type Scaler,
} from "../src/index.ts";
import {
  composeDown,
  composeGate,
  DOCKER_SOCKET,
  ensureNodeImage,
  projectContainers,
  REPO_ROOT,
} from "./support/docker-compose.ts";

const gate = await composeGate();

/**
 * The worker's name is the first 12 characters of its container id (what the scaler expects). With
 * `network_mode: host` the container shares the host's hostname, so the default (`skiff worker` names
 * itself after the hostname, which Docker sets to those 12 characters) is not there; read the id from
 * the bind mount Docker makes for the container's /etc/hostname instead.
 */
const CONTAINER_ID_12 =
  "sed -n 's#.*/containers/\\([0-9a-f]\\{12\\}\\)[0-9a-f]*/hostname /etc/hostname .*#\\1#p' /proc/self/mountinfo";

describeWith(gate, "compose scaler: real worker containers through docker compose", () => {
  const project = `skiffcompose${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "skiff-compose-"));
  const file = join(dir, "compose.yaml");
  let store: Store;
  let api: Api;
  let url: string;
  let operator: string;
  let scaler: Scaler;
  let controller: Controller;

  beforeAll(async () => {
    const image = await ensureNodeImage();
    store = await openStore({});
    api = buildApi({
      config: {
        host: "127.0.0.1",
        port: 0,
        heartbeatIntervalMs: 500,
        offlineAfterMs: 5_000,
        reaperIntervalMs: 200,
      },
      store,
      bus: await createBus({}),
      logger: pino({ level: "silent" }),
    });
    url = await api.listen();
    operator = newTokenSecret();
    await store.createToken(
      { name: "olivia", role: "operator", hash: hashToken(operator) },
      { actor: "t", role: "system" },
    );
    const token = await mintWorkerToken(store, "compose-test", "test");
    const worker = [
      "exec node --import tsx /app/apps/cli/src/main.ts worker",
      `--api-url ${url} --token ${token} --name "$(${CONTAINER_ID_12})"`,
      // The stand-in image has no bubblewrap (and no privileges for it), so steps run unconfined.
      "--unsafe-no-sandbox --health-port 0 --work-dir /tmp/work",
    ].join(" ");
    const compose = {
      version: "2.4",
      services: {
        worker: {
          image,
          // The engine here runs without a bridge; the API listens on the host's loopback.
          network_mode: "host",
          working_dir: "/app",
          volumes: [`${REPO_ROOT}:/app:ro`],
          // `$$` is a literal `$` to compose; the shell in the container expands it.
          command: ["/bin/sh", "-c", worker.replaceAll("$", () => "$$")],
          // A drained worker exits 0 and must stay down (the scaler removes it).
          restart: "no",
        },
      },
    };
    // YAML 1.1 as compose v1 (PyYAML) reads it: quotes "no", which would otherwise turn into false.
    writeFileSync(file, stringify(compose, { version: "1.1" }));
    await store.updateFleet({ mode: "manual", replicas: 1 }, { actor: "olivia", role: "operator" });
    scaler = createComposeScaler({
      project,
      file,
      service: "worker",
      dockerSocket: DOCKER_SOCKET,
      composeCommand: gate.compose,
    });
    controller = new Controller(store, scaler, {
      holder: "ctl-compose-test",
      tickMs: 500,
      slotsPerWorker: 2,
      decide: { upCooldownMs: 0, downCooldownMs: 0, downStableMs: 0 },
      // A failing reconcile (e.g. compose's stderr) is what explains a timeout below.
      log: (msg, fields) => {
        if (msg.includes("failed")) console.error(msg, fields);
      },
    });
    controller.start();
  });

  afterAll(async () => {
    await controller?.stop();
    await scaler?.close();
    await composeDown(gate.compose, project, file).catch((err: unknown) => console.error(err));
    await api?.shutdown();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
    expect(await projectContainers(project), "containers of the project left behind").toEqual([]);
  });

  const online = () => store.listAgents({ includeOffline: false });
  const scale = (replicas: number) =>
    store.updateFleet({ mode: "manual", replicas }, { actor: "olivia", role: "operator" });

  it("surfaces a failing compose command with its stderr", async () => {
    const missing = join(dir, "missing.yaml");
    const broken = createComposeScaler({
      project: `${project}x`,
      file: missing,
      service: "worker",
      dockerSocket: DOCKER_SOCKET,
      composeCommand: gate.compose,
    });
    try {
      await expect(broken.add(1)).rejects.toThrow(
        /up -d --no-deps --scale worker=1 worker` failed: .*missing\.yaml/s,
      );
    } finally {
      await broken.close();
    }
  });

  it("scales 1 → 3 → 1, draining the idle workers and never the one running a job", async () => {
    const first = await waitFor(
      "one worker container online",
      async () => {
        const agents = await online();
        return agents.length === 1 && scaler.list().length === 1 ? agents : undefined;
      },
      90_000,
      250,
    );
    expect(first.map((a) => a.name)).toEqual(scaler.list());

    await scale(3);
    const three = await waitFor(
      "three workers online",
      async () => {
        const agents = await online();
        return agents.length === 3 ? agents : undefined;
      },
      90_000,
      250,
    );
    // Each agent registered under the name the scaler derives from its container.
    expect(three.map((a) => a.name).sort()).toEqual([...scaler.list()].sort());
    const running = (await projectContainers(project)).filter((c) => c.state === "running");
    expect(running.map((c) => composeWorkerName(c.id)).sort()).toEqual([...scaler.list()].sort());

    const res = await fetch(`${url}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${operator}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "long", steps: [{ name: "wait", run: "sleep 20" }] }),
    });
    expect(res.status).toBe(201);
    const jobId = ((await res.json()) as { id: string }).id;
    const busy = await waitFor(
      "the job to run on one worker",
      async () => {
        const job = await store.getJob(jobId);
        if (job?.state !== "running") return undefined;
        return (await online()).find((a) => a.id === job.agentId && a.runningJobs.includes(jobId));
      },
      30_000,
      100,
    );

    await scale(1);
    await waitFor(
      "one container left, the busy one",
      async () => {
        const all = await projectContainers(project);
        return all.length === 1 && scaler.list().join() === busy.name;
      },
      90_000,
      250,
    );
    const [left] = await projectContainers(project);
    expect(left && composeWorkerName(left.id)).toBe(busy.name);
    expect(left?.state).toBe("running");

    const drains = await store.listAudit({ action: "agent.drain", limit: 10 });
    const idle = three.filter((a) => a.id !== busy.id).map((a) => a.id);
    expect(drains.map((d) => d.target).sort()).toEqual([...idle].sort());

    const job = await waitFor(
      "the job to finish",
      async () => {
        const j = await store.getJob(jobId);
        return j && ["succeeded", "failed", "canceled", "timed_out"].includes(j.state) ? j : undefined;
      },
      60_000,
      200,
    );
    expect([job.state, job.attempt, job.agentId]).toEqual(["succeeded", 1, busy.id]);
    // A drained worker normally deregisters before it exits; on a loaded machine its last call can
    // miss, and then the API marks it offline after offlineAfterMs (5 s here). Either way, the fleet
    // settles on the busy worker alone, and no other container is ever started.
    let last: { online: string[]; containers: number } = { online: [], containers: 0 };
    await waitFor(
      `only ${busy.name} online, in the one container left`,
      async () => {
        last = {
          online: (await online()).map((a) => a.name),
          containers: (await projectContainers(project)).length,
        };
        expect(last.containers, "containers of the project").toBe(1);
        return last.online.join() === busy.name;
      },
      15_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}`);
    });
  }, 300_000);
});
