import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { allOf, describeWith, type ServiceGate, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { finishedJob, startTestApi, type TestApi } from "../../api/test/harness.ts";
import { freePort } from "./cli.ts";
import { expand, find, type K8sObject, parseManifests, root } from "./deployments.ts";
import { docker, dockerCliGate, ensureImage } from "./image.ts";

/**
 * The worker pod of deploy/kubernetes, with the local Docker engine standing in for the kubelet (no
 * Kubernetes here): the image built from this checkout runs the container's args, env and mounted
 * config map under the pod's own security context, translated field by field into `docker run`
 * options (user, read-only root, dropped capabilities, no privilege escalation, the seccomp profile
 * the manifest names, read from deploy/seccomp/, an unmasked /proc). A field this translation does
 * not know fails the test, so the manifest cannot gain a restriction this check silently skips.
 * Not applied: `hostUsers: false` (Docker has no per-container user namespace; it only adds one more
 * layer below what is tested here).
 */

const exec = promisify(execFile);
const LABEL = "skiff.test=k8s-worker-container";

async function kubectlGate(): Promise<ServiceGate> {
  try {
    await exec("kubectl", ["version", "--client"], { timeout: 20_000 });
    return { available: true, missing: null };
  } catch {
    return {
      available: false,
      missing: "`kubectl` is missing: apt-get install kubernetes-client (see .ci/run)",
    };
  }
}

/** `docker run` options for a pod's security context; throws on a field it does not know. */
export function securityOptions(pod: any, container: any): string[] {
  const known = (where: string, ctx: Record<string, unknown>, fields: string[]) => {
    for (const key of Object.keys(ctx ?? {}))
      if (!fields.includes(key)) throw new Error(`${where}.securityContext.${key}: not translated to docker`);
  };
  const p = pod.securityContext ?? {};
  const c = container.securityContext ?? {};
  known("pod", p, ["runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"]);
  known("container", c, [
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "capabilities",
    "seccompProfile",
    "procMount",
    "appArmorProfile",
  ]);
  const uid = c.runAsUser ?? p.runAsUser;
  const gid = c.runAsGroup ?? p.runAsGroup;
  if ((c.runAsNonRoot ?? p.runAsNonRoot) && !(uid > 0))
    throw new Error("runAsNonRoot without a non-zero uid");
  const out = ["--user", `${uid}:${gid}`];
  if (p.fsGroup !== undefined) out.push("--group-add", String(p.fsGroup));
  if (c.readOnlyRootFilesystem) out.push("--read-only");
  if (c.allowPrivilegeEscalation === false) out.push("--security-opt", "no-new-privileges");
  for (const cap of c.capabilities?.drop ?? []) out.push("--cap-drop", cap);
  for (const cap of c.capabilities?.add ?? []) out.push("--cap-add", cap);
  const seccomp = c.seccompProfile ?? p.seccompProfile;
  if (seccomp?.type === "Localhost") {
    // The kubelet reads <its seccomp root>/<localhostProfile>; deploy/seccomp is where we ship it.
    const file = join(root, "deploy/seccomp", seccomp.localhostProfile.replace(/^profiles\//, ""));
    out.push("--security-opt", `seccomp=${file}`);
  } else if (seccomp?.type === "Unconfined") out.push("--security-opt", "seccomp=unconfined");
  else if (seccomp?.type !== "RuntimeDefault") throw new Error(`seccompProfile ${JSON.stringify(seccomp)}`);
  if (c.procMount === "Unmasked") out.push("--security-opt", "systempaths=unconfined");
  if (c.appArmorProfile?.type === "Unconfined") out.push("--security-opt", "apparmor=unconfined");
  return out;
}

describeWith(
  allOf(await dockerCliGate(), await kubectlGate()),
  "deploy/kubernetes worker pod in Docker",
  () => {
    let objects: K8sObject[] = [];
    let image = "";
    let api: TestApi | undefined;
    const dir = mkdtempSync(join(tmpdir(), "skiff-k8s-worker-"));
    const containers: string[] = [];

    beforeAll(async () => {
      const { stdout } = await exec("kubectl", ["kustomize", "deploy/kubernetes"], { cwd: root });
      objects = parseManifests(stdout);
      image = await ensureImage("local");
      api = await startTestApi({ adapter: "pglite" });
    }, 600_000);

    afterAll(async () => {
      for (const id of containers) await docker(["rm", "-f", id]).catch(() => undefined);
      await api?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    /** `docker run` for the worker pod: its security context, volumes, env and args, as the kubelet would. */
    async function runPod(podName: string, token: string, override: (opts: string[]) => string[] = (o) => o) {
      const spec = find(objects, "Deployment", "skiff-worker").spec.template.spec;
      const [container] = spec.containers;
      const opts = ["run", "-d", "--label", LABEL, "--network", "host", "--hostname", podName];
      opts.push(...override(securityOptions(spec, container)));
      // One PID namespace for the pod: the pause process is PID 1 and reaps, as Docker's init does.
      if (spec.shareProcessNamespace) opts.push("--init");
      for (const m of container.volumeMounts) {
        const volume = spec.volumes.find((v: { name: string }) => v.name === m.name);
        if (volume.configMap) {
          const local = join(dir, `${podName}-${m.name}`);
          rmSync(local, { recursive: true, force: true });
          const data: Record<string, string> = find(objects, "ConfigMap", volume.configMap.name).data;
          mkdirSync(local, { recursive: true });
          for (const [key, text] of Object.entries(data)) writeFileSync(join(local, key), text);
          opts.push("-v", `${local}:${m.mountPath}:ro`);
        } else if (volume.emptyDir) {
          // An emptyDir as the kubelet makes one: a fresh directory, mode 2777, group fsGroup.
          const local = join(dir, `${podName}-${m.name}`);
          rmSync(local, { recursive: true, force: true });
          mkdirSync(local, { recursive: true });
          chownSync(local, 0, spec.securityContext.fsGroup);
          chmodSync(local, 0o2777);
          opts.push("-v", `${local}:${m.mountPath}`);
        } else throw new Error(`volume ${m.name}: not translated to docker`);
      }
      const env: Record<string, string> = {};
      for (const e of container.env) {
        if (e.value !== undefined) env[e.name] = e.value;
        else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
        else if (e.valueFrom?.secretKeyRef?.key === "SKIFF_TOKEN") env[e.name] = token;
        else throw new Error(`env ${e.name}: not translated to docker`);
      }
      for (const [k, v] of Object.entries(env)) opts.push("-e", `${k}=${v}`);
      const healthPort = await freePort();
      const args = (container.args as string[]).map((a) => expand(a, env));
      const set = (flag: string, value: string) => {
        const at = args.indexOf(flag);
        expect(at, flag).toBeGreaterThanOrEqual(0);
        args[at + 1] = value;
      };
      // The cluster's addresses, on this machine: the API on loopback, health on a free port.
      set("--api-url", api?.url ?? "");
      set("--health-host", "127.0.0.1");
      set("--health-port", String(healthPort));
      const id = await docker([...opts, image, ...args]);
      containers.push(id);
      return { id, healthPort };
    }

    const agentNamed = async (name: string) => {
      const res = await api?.call("GET", "/v1/agents", { token: api.tokens.viewer });
      return (res?.body.items as any[] | undefined)?.find((a) => a.name === name && a.status === "online");
    };

    it("runs a real bwrap job under the pod's security context and the seccomp profile it names", {
      timeout: 180_000,
    }, async () => {
      if (!api) throw new Error("no API");
      const agentToken = (
        await api.call("POST", "/v1/tokens", {
          token: api.tokens.admin,
          body: { name: "k8s-worker-pod", role: "agent" },
        })
      ).body.token as string;
      const podName = `skiff-worker-5f7c9-${process.pid}`;
      const { id, healthPort } = await runPod(podName, agentToken);

      // The container is what the manifest asks for.
      const host = JSON.parse(await docker(["inspect", "--format", "{{json .HostConfig}}", id]));
      expect(host.ReadonlyRootfs).toBe(true);
      expect(host.CapDrop).toEqual(["ALL"]);
      expect(host.SecurityOpt).toContain("no-new-privileges");
      expect(host.SecurityOpt.find((o: string) => o.startsWith("seccomp="))).toContain("clone");
      expect(await docker(["inspect", "--format", "{{.Config.User}}", id])).toBe("10001:10001");

      const agent = await waitFor("the worker pod to register", () => agentNamed(podName), 90_000, 200);
      expect(agent).toMatchObject({ sandbox: "bwrap", queues: ["default"] });
      expect((await fetch(`http://127.0.0.1:${healthPort}/readyz`)).status).toBe(200);

      const submitted = await api.call("POST", "/v1/jobs", {
        token: api.tokens.operator,
        body: {
          name: "in-the-pod",
          queue: "default",
          env: { DECLARED: "yes" },
          steps: [
            { name: "who", run: 'echo "uid=$(id -u) host=$(hostname) pwd=$(pwd)"' },
            { name: "env", run: "env | sort" },
            {
              name: "walls",
              run: "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
            },
            { name: "net", run: "ip -o link 2>/dev/null || cat /proc/net/dev" },
          ],
        },
      });
      expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
      const jobId: string = submitted.body.id;
      const { job, lines } = await finishedJob(api, jobId, 90_000, 200);
      const text = lines.map((l) => l.text).join("\n");
      // What the steps printed, without the worker's own lines about each step.
      const steps = lines
        .filter((l) => l.stream !== "system")
        .map((l) => l.text)
        .join("\n");
      expect(job.state, text).toBe("succeeded");
      // Inside bwrap: its own uid, hostname and workspace, not the pod's.
      expect(steps).toMatch(/uid=\d+ host=skiff-sandbox pwd=\/workspace/);
      expect(steps).not.toContain(podName);
      // Only what the job declared reaches the step: not the pod's token, name or home.
      expect(steps).toContain("DECLARED=yes");
      expect(steps).not.toContain(agentToken);
      expect(text).not.toContain(agentToken);
      expect(steps).not.toMatch(/SKIFF_TOKEN|POD_NAME|SKIFF_HOME/);
      // No capabilities, no privilege gain, a seccomp filter, and only the sandbox's own processes.
      expect(steps).toMatch(/CapEff:\s+0000000000000000/);
      expect(steps).toMatch(/CapBnd:\s+0000000000000000/);
      expect(steps).toMatch(/NoNewPrivs:\s+1/);
      expect(steps).toMatch(/Seccomp:\s+2/);
      // No network: loopback at most.
      expect(steps).not.toMatch(/eth0|ens\d|veth/);

      // Nothing the steps left behind stays a zombie: PID 1 reaps.
      const states = await docker(["exec", id, "ps", "-o", "stat"]);
      expect(states.split("\n").filter((l) => l.trim().startsWith("Z"))).toEqual([]);

      // SIGTERM, as the kubelet sends it: the worker drains, deregisters and exits 0.
      await docker(["stop", "-t", "60", id], 90_000);
      expect(await docker(["inspect", "--format", "{{.State.ExitCode}}", id])).toBe("0");
    });

    it("under the runtime's default seccomp profile instead, the worker refuses to start and names the profile", {
      timeout: 120_000,
    }, async () => {
      const podName = `skiff-worker-default-${process.pid}`;
      // The same pod with seccompProfile: RuntimeDefault: the engine's own default filter.
      const { id } = await runPod(podName, "not-used", (opts) => {
        const at = opts.findIndex((o) => o.startsWith("seccomp="));
        expect(at).toBeGreaterThan(0);
        return [...opts.slice(0, at - 1), ...opts.slice(at + 1)];
      });
      const code = await waitFor(
        "the worker to exit",
        async () => {
          const state = JSON.parse(await docker(["inspect", "--format", "{{json .State}}", id]));
          return state.Running ? undefined : String(state.ExitCode);
        },
        60_000,
        200,
      );
      const { stdout, stderr } = await exec("docker", ["logs", id]);
      const said = stdout + stderr;
      expect(code, said).not.toBe("0");
      expect(said).toContain("bubblewrap cannot create namespaces");
      expect(said).toContain("deploy/seccomp/skiff-worker.json");
      expect(await agentNamed(podName)).toBeUndefined();
    });

    it("with the runtime's /proc masks instead (no procMount: Unmasked), the worker refuses to start and says so", {
      timeout: 120_000,
    }, async () => {
      const podName = `skiff-worker-masked-${process.pid}`;
      const { id } = await runPod(podName, "not-used", (opts) => {
        const at = opts.indexOf("systempaths=unconfined");
        expect(at).toBeGreaterThan(0);
        return [...opts.slice(0, at - 1), ...opts.slice(at + 1)];
      });
      await waitFor(
        "the worker to exit",
        async () => !JSON.parse(await docker(["inspect", "--format", "{{json .State}}", id])).Running,
        60_000,
        200,
      );
      const { stdout, stderr } = await exec("docker", ["logs", id]);
      expect(stdout + stderr).toContain("cannot mount a fresh /proc");
      expect(stdout + stderr).toContain("procMount: Unmasked");
    });
  },
);
