import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  allOf,
  createTestDatabase,
  describeWith,
  pgGate,
  redisGate,
  type ServiceGate,
  TEST_REDIS_URL,
  type TestDatabase,
  waitFor,
} from "@skiff/testkit";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { type CliProc, freePort, killLeftovers, startCli } from "./cli.ts";
import {
  type K8sObject,
  type ProcessRun,
  parseManifests,
  podProcess,
  root,
  withFlag,
} from "./deployments.ts";

/**
 * Starts what `kubectl kustomize deploy/kubernetes` describes, without a cluster: the api,
 * controller and worker containers' args, env (the example Secret, with DATABASE_URL and REDIS_URL
 * pointed at the test services and SKIFF_TOKEN at a real agent token) and mounted config map run as
 * real processes on loopback. Kubernetes itself is what cannot run here: the controller's scaler
 * talks to a kubeconfig whose server is a closed loopback port, and the pods' security context is
 * not applied (the processes run as the test's user).
 */

const exec = promisify(execFile);

async function tool(bin: string, args: string[], install: string): Promise<ServiceGate> {
  try {
    await exec(bin, args, { timeout: 20_000 });
    return { available: true, missing: null };
  } catch {
    return { available: false, missing: `\`${bin}\` is missing: ${install}` };
  }
}

const gate = allOf(
  ...(await Promise.all([
    pgGate(),
    redisGate(),
    tool("kubectl", ["version", "--client"], "apt-get install kubernetes-client (see .ci/run)"),
    tool("bwrap", ["--version"], "apt-get install bubblewrap (the worker's config map asks for it)"),
  ])),
);

const json = async (url: string, init?: RequestInit) => {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json().catch(() => null)) as any };
};

describeWith(gate, "deploy/kubernetes as processes", () => {
  let objects: K8sObject[] = [];
  let db: TestDatabase;
  const dir = mkdtempSync(join(tmpdir(), "skiff-k8s-"));
  const procs: CliProc[] = [];

  beforeAll(async () => {
    const { stdout } = await exec("kubectl", ["kustomize", "deploy/kubernetes"], { cwd: root });
    objects = parseManifests(stdout);
    db = await createTestDatabase();
  });

  afterEach(() => {
    expect(killLeftovers(), "processes left running").toBe(0);
  });

  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const AUDIT_KEY = randomBytes(32).toString("hex");

  /** The pod's process with the test's services in place of the example Secret's addresses. */
  function pod(deployment: string, extra: Record<string, string> = {}): ProcessRun {
    const run = podProcess(objects, deployment, dir);
    const env = { ...run.env, ...extra };
    if ("DATABASE_URL" in run.env) env.DATABASE_URL = db.url;
    if ("REDIS_URL" in run.env) env.REDIS_URL = TEST_REDIS_URL;
    // The example's placeholder is refused at start, as it must be: an operator sets a real key.
    if ("SKIFF_AUDIT_KEY" in run.env) env.SKIFF_AUDIT_KEY = AUDIT_KEY;
    // Outside a cluster nothing else may stand in: never a DATABASE_URL the pod does not have.
    for (const name of ["DATABASE_URL", "REDIS_URL", "SKIFF_TOKEN", "SKIFF_URL", "SKIFF_AUDIT_KEY"])
      if (!(name in run.env) && !(name in extra)) env[name] = undefined;
    return { args: run.args, env };
  }

  it("the api, controller and worker pods start and become ready (no Kubernetes API server here)", {
    timeout: 180_000,
  }, async () => {
    const prefix = `skiff-k8s-${process.pid}`;
    // api: /readyz 200 on its port, and the bootstrap admin token in its home volume.
    const apiPort = await freePort();
    const api = pod("skiff-api", { SKIFF_BUS_PREFIX: prefix });
    let args = withFlag(withFlag(api.args, "--host", "127.0.0.1"), "--port", String(apiPort));
    procs.push(startCli(args, api.env));
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor(
      "the api pod's /readyz",
      async () => (await json(`${apiUrl}/readyz`)).status === 200,
      60_000,
      100,
    );
    const home = api.env.SKIFF_HOME ?? "";
    const admin = readFileSync(join(home, "admin.token"), "utf8").trim();
    const created = await json(`${apiUrl}/v1/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "k8s-workers", role: "agent" }),
    });
    expect(created.status).toBe(201);

    // controller: leads, its scaler pointed at a cluster that is not there.
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        `clusters: [{name: none, cluster: {server: "http://127.0.0.1:${await freePort()}"}}]`,
        "users: [{name: none, user: {}}]",
        "contexts: [{name: none, context: {cluster: none, user: none, namespace: skiff}}]",
        "current-context: none",
      ].join("\n"),
    );
    const controllerPort = await freePort();
    const controller = pod("skiff-controller", { KUBECONFIG: kubeconfig });
    args = withFlag(withFlag(controller.args, "--host", "127.0.0.1"), "--port", String(controllerPort));
    expect(args).toEqual(expect.arrayContaining(["--scaler", "kubernetes"]));
    procs.push(startCli(args, controller.env));
    const leading = await waitFor(
      "the controller pod to lead",
      async () => {
        const r = await json(`http://127.0.0.1:${controllerPort}/readyz`);
        return r.status === 200 && r.body.leading === true ? r.body : undefined;
      },
      60_000,
      100,
    );
    expect(leading.status).toBe("ready");

    // worker: registers under its pod's name with the Secret's token, health on its port.
    const healthPort = await freePort();
    const worker = pod("skiff-worker", { SKIFF_TOKEN: created.body.token });
    expect(worker.env.DATABASE_URL).toBeUndefined();
    expect(worker.env.SKIFF_AUDIT_KEY).toBeUndefined(); // workers never hold the audit key
    args = withFlag(worker.args, "--api-url", apiUrl);
    args = withFlag(withFlag(args, "--health-host", "127.0.0.1"), "--health-port", String(healthPort));
    procs.push(startCli(args, worker.env));
    const podName = worker.args[worker.args.indexOf("--name") + 1];
    const agent = await waitFor(
      "the worker pod to register",
      async () => {
        const r = await json(`${apiUrl}/v1/agents`, { headers: { authorization: `Bearer ${admin}` } });
        return (r.body?.items ?? []).find((a: any) => a.name === podName && a.status === "online");
      },
      60_000,
      200,
    );
    expect(agent).toMatchObject({ sandbox: "bwrap", slots: 2, queues: ["default"] });
    expect((await json(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(200);

    // SIGTERM, as the kubelet sends it: each stops cleanly, the worker deregistering first.
    for (const p of procs.reverse()) {
      p.child.kill("SIGTERM");
      const done = await p.done;
      expect(done.code, done.stderr).toBe(0);
    }
    procs.length = 0;
  });
});
