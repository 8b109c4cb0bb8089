import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiConfig } from "@skiff/api";
import { WorkerConfig } from "@skiff/worker";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { controllerSettings, registerController } from "../src/commands/controller.ts";
import { registerServe, serveSettings } from "../src/commands/serve.ts";
import { registerWorker, workerSettings } from "../src/commands/worker.ts";
import {
  composeProcess,
  kubernetesFiles,
  type Proc,
  type ProcessRun,
  podProcess,
  root,
} from "./deployments.ts";

/**
 * Every config the project ships, loaded by every process with the environment that process gets in
 * that deployment: the same flag parsing and settings code `skiff <process>` runs before it starts
 * anything, so a file one process cannot start with fails here.
 */

const dir = mkdtempSync(join(tmpdir(), "skiff-matrix-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Parses `args` as `skiff` would and returns the settings the command would start with. */
async function settingsOf(run: ProcessRun): Promise<Record<string, unknown>> {
  const program = new Command("skiff").exitOverride();
  registerServe(program);
  registerController(program);
  registerWorker(program);
  let called: { name: string; flags: never; cmd: Command } | undefined;
  for (const sub of program.commands) {
    sub.exitOverride().action((flags: Record<string, unknown>, cmd: Command) => {
      called = { name: sub.name(), flags: flags as never, cmd };
    });
  }
  await program.parseAsync(run.args, { from: "user" });
  if (!called) throw new Error(`skiff ${run.args.join(" ")} ran no command`);
  const { name, flags, cmd } = called;
  const env = Object.fromEntries(Object.entries(run.env).filter(([, v]) => v !== undefined));
  if (name === "api" || name === "up") {
    const s = await serveSettings(name, flags, cmd, env);
    // What the API itself validates at start.
    ApiConfig.parse({
      ...s.api,
      host: s.host,
      port: s.port,
      databaseUrl: s.databaseUrl,
      redisUrl: s.redisUrl,
    });
    return { ...s };
  }
  if (name === "worker") return WorkerConfig.parse(await workerSettings(flags, cmd, env));
  if (name === "controller") return { ...(await controllerSettings(flags, cmd, env)) };
  throw new Error(`not a long-running process: ${name}`);
}

const k8s = kubernetesFiles();
const secret = k8s.find((o) => o.kind === "Secret")?.stringData as Record<string, string>;

/** The template copied as its README says (`cp -r template/deploy-root X`), used as SKIFF_HOME. */
function templateHome(): string {
  const home = join(dir, `template-${Math.random().toString(36).slice(2)}`);
  cpSync(join(root, "template/deploy-root"), home, { recursive: true });
  return home;
}

const K8S: Record<Proc, () => ProcessRun> = {
  api: () => podProcess(k8s, "skiff-api", join(dir, "k8s-api")),
  controller: () => podProcess(k8s, "skiff-controller", join(dir, "k8s-controller")),
  worker: () => podProcess(k8s, "skiff-worker", join(dir, "k8s-worker")),
  // No pod runs `up`; with the API pod's environment and config it must still start.
  up: () => {
    const api = podProcess(k8s, "skiff-api", join(dir, "k8s-up"));
    const config = api.args[api.args.indexOf("--config") + 1] ?? "";
    return { args: ["up", "--no-tui", "--config", config], env: api.env };
  },
};
const TEMPLATE: Record<Proc, () => ProcessRun> = {
  api: () => ({
    args: ["api"],
    env: { SKIFF_HOME: templateHome(), DATABASE_URL: secret.DATABASE_URL, REDIS_URL: secret.REDIS_URL },
  }),
  controller: () => ({
    args: ["controller"],
    env: { SKIFF_HOME: templateHome(), DATABASE_URL: secret.DATABASE_URL },
  }),
  worker: () => ({
    args: ["worker", "--api-url", "http://api.internal:8787", "--token", "skf_worker"],
    env: { SKIFF_HOME: templateHome() },
  }),
  up: () => ({ args: ["up", "--no-tui"], env: { SKIFF_HOME: templateHome() } }),
};
const COMPOSE: Record<Proc, () => ProcessRun> = {
  api: () => composeProcess("api", join(dir, "compose-api"), { SKIFF_AGENT_TOKEN: "skf_compose" }),
  controller: () =>
    composeProcess("controller", join(dir, "compose-controller"), { SKIFF_AGENT_TOKEN: "skf_compose" }),
  worker: () => composeProcess("worker", join(dir, "compose-worker"), { SKIFF_AGENT_TOKEN: "skf_compose" }),
  up: () => {
    const api = composeProcess("api", join(dir, "compose-up"), {});
    return { args: ["up", "--no-tui"], env: api.env };
  },
};

const deployments = {
  "deploy/kubernetes (configmap.yaml with secret.example.yaml)": K8S,
  "template/deploy-root/skiff.yaml (as SKIFF_HOME)": TEMPLATE,
  "docker-compose.local.yml (its environment, no config file)": COMPOSE,
};

describe("every shipped config × every process", () => {
  for (const [deployment, processes] of Object.entries(deployments)) {
    describe(deployment, () => {
      for (const [proc, run] of Object.entries(processes)) {
        it(`skiff ${proc} loads its settings`, async () => {
          const r = run();
          await expect(settingsOf(r), `skiff ${r.args.join(" ")}`).resolves.toBeTypeOf("object");
        });
      }
    });
  }

  it("each process gets what its deployment means it to have", async () => {
    const k8sWorker = await settingsOf(K8S.worker());
    expect(k8sWorker).toMatchObject({
      apiUrl: "http://skiff-api:8787",
      name: "skiff-worker-7d9f8-abcde",
      sandbox: "bwrap",
      token: secret.SKIFF_TOKEN,
      healthHost: "0.0.0.0",
      healthPort: 8789,
      drainTimeoutMs: 300_000,
    });
    const k8sController = await settingsOf(K8S.controller());
    expect(k8sController).toMatchObject({
      scaler: "kubernetes",
      databaseUrl: secret.DATABASE_URL,
      port: 8788,
    });
    const k8sApi = await settingsOf(K8S.api());
    expect(k8sApi).toMatchObject({
      host: "0.0.0.0",
      port: 8787,
      databaseUrl: secret.DATABASE_URL,
      redisUrl: secret.REDIS_URL,
    });

    const composeController = await settingsOf(COMPOSE.controller());
    expect(composeController).toMatchObject({ scaler: "compose", apiUrl: "http://api:8787" });
    const composeWorker = await settingsOf(COMPOSE.worker());
    expect(composeWorker).toMatchObject({
      apiUrl: "http://api:8787",
      token: "skf_compose",
      sandbox: "bwrap",
    });

    // The template's `up` is the PoC: embedded storage, whatever the split-mode sections say.
    const up = await settingsOf(TEMPLATE.up());
    expect(up).toMatchObject({ databaseUrl: undefined, redisUrl: undefined, port: 8787 });
  });

  it("a worker whose config names an unset variable in a section it does not read still starts", async () => {
    const settings = await settingsOf({
      ...K8S.worker(),
    });
    expect(settings.apiUrl).toBe("http://skiff-api:8787");
    // ...while the API, which reads `database:`, names the variable, the field and the file.
    const api = K8S.api();
    await expect(settingsOf({ ...api, env: { ...api.env, DATABASE_URL: undefined } })).rejects.toThrow(
      /skiff\.yaml: database\.url: \$\{env\.DATABASE_URL\} is not set/,
    );
  });
});
