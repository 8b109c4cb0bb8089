import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describeWith, type ServiceGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { finishedJob, startTestApi, type TestApi } from "../../api/test/harness.ts";
import { docker, dockerCliGate, ensureImage } from "./image.ts";

const exec = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;
const LABEL = "skiff.test=packaging";

async function toolGate(bin: string, args: string[], install: string): Promise<ServiceGate> {
  try {
    await exec(bin, args, { timeout: 20_000 });
    return { available: true, missing: null };
  } catch {
    return { available: false, missing: `\`${bin}\` is missing: ${install}` };
  }
}

const gate = await dockerCliGate();

describeWith(gate, "the skiff image, built from a locally imported Node base", () => {
  let image = "";
  let api: TestApi | undefined;
  const containers: string[] = [];

  beforeAll(async () => {
    image = await ensureImage("node");
  }, 600_000);

  afterAll(async () => {
    for (const id of containers) await docker(["rm", "-f", id]).catch(() => undefined);
    await api?.close();
  });

  it("runs `skiff --help` as a non-root user, with no dev tooling inside", async () => {
    const config = JSON.parse(await docker(["image", "inspect", "--format", "{{json .Config}}", image]));
    expect(config.User).toBe("10001:10001");
    expect(config.Entrypoint).toEqual(["skiff"]);
    expect(config.Healthcheck?.Test).toEqual(["CMD", "node", "/app/healthcheck.mjs"]);

    const help = await docker(["run", "--rm", "--label", LABEL, image, "--help"]);
    expect(help).toContain("Usage: skiff");
    expect(help).toMatch(/worker \[options\]/);
    const inside = await docker([
      "run",
      "--rm",
      "--label",
      LABEL,
      "--entrypoint",
      "sh",
      image,
      "-c",
      'id -u; ls /app/node_modules; test -w "$SKIFF_HOME" && echo home-writable',
    ]);
    const [uid, ...rest] = inside.split("\n");
    expect(uid).toBe("10001");
    expect(rest).toContain("home-writable");
    for (const dev of ["tsx", "typescript", "vitest", "@biomejs", "fast-check"])
      expect(rest).not.toContain(dev);
    expect(rest).toContain("fastify");
  });

  it("runs `skiff worker` in a container that takes a job from the API and finishes it", async () => {
    api = await startTestApi({ adapter: "pglite" });
    const name = `image-worker-${process.pid}`;
    const id = await docker([
      "run",
      "-d",
      "--label",
      LABEL,
      "--network",
      "host",
      image,
      "worker",
      "--api-url",
      api.url,
      "--token",
      api.tokens.agent,
      "--name",
      name,
      "--labels",
      "queue=image",
      "--health-port",
      "0",
      "--unsafe-no-sandbox",
    ]);
    containers.push(id);

    const agent = await waitFor(
      "the containerised worker to register",
      async () => {
        const res = await api?.call("GET", "/v1/agents", { token: api.tokens.viewer });
        const list: any[] = res?.body.agents ?? res?.body.items ?? res?.body ?? [];
        return list.find((a) => a.name === name && a.status === "online");
      },
      60_000,
      200,
    );
    expect(agent.name).toBe(name);

    const submitted = await api.call("POST", "/v1/jobs", {
      token: api.tokens.operator,
      body: {
        name: "from-the-image",
        queue: "image",
        steps: [
          { name: "who", run: 'echo "ran as $(id -u) in $(pwd)"' },
          { name: "write", run: "echo built > out.txt && cat out.txt" },
        ],
      },
    });
    expect(submitted.status).toBe(201);
    const jobId: string = submitted.body.id;
    const { job, lines } = await finishedJob(api, jobId, 60_000, 100);
    const text = lines.map((l) => l.text).join("\n");
    expect(job.state, text).toBe("succeeded");
    expect(text).toMatch(/ran as 10001 in \/var\/lib\/skiff\/work\//);
    expect(text).toContain("built");

    // SIGTERM drains: the idle worker deregisters and the container exits cleanly.
    await docker(["stop", "-t", "30", id], 60_000);
    expect(await docker(["inspect", "--format", "{{.State.ExitCode}}", id])).toBe("0");
  });
});

describeWith(
  await toolGate("docker-compose", ["version"], "apt-get install docker-compose (see .ci/run)"),
  "the local compose stack",
  () => {
    const config = async (network: "bridge" | "host") => {
      const { stdout } = await exec(
        "docker-compose",
        ["-f", "docker-compose.local.yml", "-f", `docker-compose.local.${network}.yml`, "config"],
        { cwd: root, env: { ...process.env, SKIFF_AGENT_TOKEN: "t0ken", SKIFF_LOCAL_NETWORK: network } },
      );
      const doc = parseAllDocuments(stdout)[0];
      if (!doc) throw new Error(`docker-compose config printed nothing:\n${stdout}`);
      return (doc.toJS() as any).services;
    };

    it("publishes only on 127.0.0.1 on the bridge, and binds only 127.0.0.1 on the host's network", async () => {
      const bridge = await config("bridge");
      for (const [name, service] of Object.entries<any>(bridge)) {
        expect(service.network_mode, name).toBeUndefined();
        for (const p of service.ports ?? []) expect(p.host_ip ?? String(p), name).toMatch(/^127\.0\.0\.1/);
      }
      const host = await config("host");
      for (const [name, service] of Object.entries<any>(host)) {
        expect(service.network_mode, name).toBe("host");
        expect(service.ports, name).toBeUndefined();
      }
      expect(host.api.command).toEqual(expect.arrayContaining(["--host", "127.0.0.1"]));
      expect(host.controller.command).toEqual(expect.arrayContaining(["--host", "127.0.0.1"]));
      expect(host.postgres.command).toContain("listen_addresses=127.0.0.1");
      expect(host.redis.command).toEqual(expect.arrayContaining(["--bind", "127.0.0.1"]));
      // The controller's own compose sees the same two files.
      expect(host.controller.command.filter((a: string) => a.startsWith("/etc/skiff/"))).toEqual([
        "/etc/skiff/docker-compose.local.yml",
        "/etc/skiff/docker-compose.local.host.yml",
      ]);
    });

    it("validates, and wires the services as docs/security.md says", async () => {
      const services = await config("bridge");
      expect(Object.keys(services).sort()).toEqual(["api", "controller", "postgres", "redis", "worker"]);
      expect(services.api.depends_on.postgres.condition).toBe("service_healthy");
      expect(services.worker.depends_on.api.condition).toBe("service_healthy");
      expect(services.controller.command).toEqual(expect.arrayContaining(["--scaler", "compose"]));
      for (const name of ["postgres", "redis", "api", "controller", "worker"]) {
        expect(services[name].healthcheck ?? "image HEALTHCHECK", name).toBeTruthy();
      }
      // Workers: no Docker socket, all capabilities dropped, drained ones stay down, default hostname.
      const worker = services.worker;
      expect(JSON.stringify(worker.volumes ?? [])).not.toContain("docker.sock");
      expect(worker.cap_drop).toEqual(["ALL"]);
      expect(worker.read_only).toBe(true);
      expect(worker.security_opt).toContain("no-new-privileges:true");
      // bwrap's calls through the shipped profile, never an unconfined seccomp.
      expect(worker.security_opt).toContain("seccomp:./deploy/seccomp/skiff-worker.json");
      expect(worker.security_opt.join()).not.toContain("seccomp:unconfined");
      expect(services.controller.volumes.map((v: any) => v.target ?? String(v).split(":")[1])).toContain(
        "/etc/skiff/deploy/seccomp/skiff-worker.json",
      );
      expect(worker.restart).toBe("on-failure");
      expect(worker.hostname).toBeUndefined();
      expect(worker.environment.SKIFF_TOKEN).toBe("t0ken");
    });
  },
);

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: any;
}

describeWith(
  await toolGate("kubectl", ["version", "--client"], "apt-get install kubernetes-client (see .ci/run)"),
  "deploy/kubernetes",
  () => {
    let objects: K8sObject[] = [];
    const find = (kind: string, name: string): K8sObject => {
      const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
      if (!found) throw new Error(`no ${kind}/${name} in the rendered kustomization`);
      return found;
    };

    beforeAll(async () => {
      const { stdout } = await exec("kubectl", ["kustomize", "deploy/kubernetes"], { cwd: root });
      objects = parseAllDocuments(stdout).map((d) => d.toJS() as K8sObject);
    });

    it("renders, and every object validates against the Kubernetes schemas", async () => {
      expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
        [
          "ConfigMap/skiff-config",
          "Deployment/skiff-api",
          "Deployment/skiff-controller",
          "Deployment/skiff-worker",
          "Namespace/skiff",
          "NetworkPolicy/skiff-worker",
          "PodDisruptionBudget/skiff-api",
          "Role/skiff-controller",
          "RoleBinding/skiff-controller",
          "Secret/skiff-secrets",
          "Service/skiff-api",
          "ServiceAccount/skiff-controller",
        ].sort(),
      );
      for (const o of objects) {
        const models = await import(`kubernetes-models/${o.apiVersion}`);
        const Model = models[o.kind];
        expect(Model, `${o.apiVersion} ${o.kind}`).toBeTypeOf("function");
        expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
        if (o.kind !== "Namespace") expect(o.metadata.namespace, o.metadata.name).toBe("skiff");
      }
      // The validation is real: a Deployment without its selector is refused.
      const { Deployment } = await import("kubernetes-models/apps/v1");
      const broken = structuredClone(find("Deployment", "skiff-worker"));
      delete broken.spec.selector;
      expect(() => new Deployment(broken as any).validate()).toThrow();
    });

    it("runs every pod non-root, read-only, with no capabilities and a seccomp profile (the worker's shipped in deploy/)", () => {
      for (const name of ["skiff-api", "skiff-controller", "skiff-worker"]) {
        const pod = find("Deployment", name).spec.template.spec;
        expect(pod.securityContext.runAsNonRoot, name).toBe(true);
        expect(pod.securityContext.runAsUser, name).toBe(10001);
        if (name === "skiff-worker") {
          // The profile bwrap needs, named for the kubelet's seccomp root, and shipped under that name.
          for (const profile of [
            pod.securityContext.seccompProfile,
            pod.containers[0].securityContext.seccompProfile,
          ]) {
            expect(profile).toEqual({ type: "Localhost", localhostProfile: "profiles/skiff-worker.json" });
          }
          expect(statSync(join(root, "deploy/seccomp/skiff-worker.json")).isFile()).toBe(true);
          expect(pod.hostUsers).toBe(false); // required by procMount: Unmasked
          expect(pod.containers[0].securityContext.procMount).toBe("Unmasked");
        } else {
          expect(pod.securityContext.seccompProfile.type, name).toBe("RuntimeDefault");
        }
        for (const c of pod.containers) {
          expect(c.securityContext.allowPrivilegeEscalation, name).toBe(false);
          expect(c.securityContext.readOnlyRootFilesystem, name).toBe(true);
          expect(c.securityContext.capabilities.drop, name).toEqual(["ALL"]);
          expect(c.securityContext.privileged, name).toBeUndefined();
        }
      }
      const worker = find("Deployment", "skiff-worker").spec.template.spec;
      expect(worker.automountServiceAccountToken).toBe(false);
      expect(JSON.stringify(worker.volumes)).not.toContain("hostPath");
    });

    it("probes the health endpoints and gives workers their drain timeout to stop", () => {
      const ports = { "skiff-api": 8787, "skiff-controller": 8788, "skiff-worker": 8789 } as const;
      for (const [name, port] of Object.entries(ports)) {
        const pod = find("Deployment", name).spec.template.spec;
        const [c] = pod.containers;
        const portOf = (ref: string | number) =>
          typeof ref === "number" ? ref : c.ports.find((p: any) => p.name === ref)?.containerPort;
        expect(c.readinessProbe.httpGet.path, name).toBe("/readyz");
        expect(c.livenessProbe.httpGet.path, name).toBe("/healthz");
        expect(portOf(c.readinessProbe.httpGet.port), name).toBe(port);
        expect(portOf(c.livenessProbe.httpGet.port), name).toBe(port);
      }
      const config = find("ConfigMap", "skiff-config").data["skiff.yaml"] as string;
      const drainMs = Number(/drainTimeoutMs:\s*(\d+)/.exec(config)?.[1]);
      const worker = find("Deployment", "skiff-worker").spec.template.spec;
      expect(worker.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(drainMs / 1000);
      expect(worker.terminationGracePeriodSeconds).toBeLessThanOrEqual(drainMs / 1000 + 60);
      // The worker is named after its pod, as the kubernetes scaler expects.
      const [c] = worker.containers;
      expect(c.args.join(" ")).toContain("--name $(POD_NAME)");
      expect(c.env.find((e: any) => e.name === "POD_NAME").valueFrom.fieldRef.fieldPath).toBe(
        "metadata.name",
      );
    });

    it("grants the controller exactly the scaler's RBAC, and fences workers off the cluster", () => {
      const role = find("Role", "skiff-controller");
      const rule = (resource: string) => role.rules.find((r: any) => r.resources.includes(resource));
      expect(rule("deployments/scale").apiGroups).toEqual(["apps"]);
      expect(rule("deployments/scale").verbs.sort()).toEqual(["get", "patch", "update"]);
      expect(rule("pods").verbs.sort()).toEqual(["get", "list", "patch", "watch"]);
      expect(role.rules).toHaveLength(2);
      const binding = find("RoleBinding", "skiff-controller");
      expect(binding.roleRef.name).toBe("skiff-controller");
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name: "skiff-controller", namespace: "skiff" },
      ]);
      expect(find("Deployment", "skiff-controller").spec.template.spec.serviceAccountName).toBe(
        "skiff-controller",
      );

      const policy = find("NetworkPolicy", "skiff-worker");
      expect(policy.spec.podSelector.matchLabels["app.kubernetes.io/name"]).toBe("skiff-worker");
      expect(policy.spec.policyTypes.sort()).toEqual(["Egress", "Ingress"]);
      expect(policy.spec.ingress ?? []).toEqual([]);
      const toApi = policy.spec.egress.find((e: any) =>
        e.to.some((t: any) => t.podSelector?.matchLabels?.["app.kubernetes.io/name"] === "skiff-api"),
      );
      expect(toApi.ports).toEqual([{ protocol: "TCP", port: 8787 }]);
      const outside = policy.spec.egress.find((e: any) => e.to.some((t: any) => t.ipBlock));
      expect(outside.to[0].ipBlock.except).toEqual(expect.arrayContaining(["10.0.0.0/8", "169.254.0.0/16"]));
    });
  },
);
