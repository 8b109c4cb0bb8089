import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, parseAllDocuments } from "yaml";

/**
 * What the shipped deployments (Kubernetes manifests, the compose file, the template) give each
 * process: its command line and its environment, with the deployment's paths mapped into a local
 * directory. Shared by the config matrix and the Kubernetes start-up check.
 */

export const root = new URL("../../../", import.meta.url).pathname;

export type Proc = "api" | "controller" | "worker" | "up";

export interface ProcessRun {
  args: string[];
  env: Record<string, string | undefined>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: any;
}

/** The objects of deploy/kubernetes as its kustomization lists them, unrendered. */
export function kubernetesFiles(): K8sObject[] {
  const dir = join(root, "deploy/kubernetes");
  const kustomization = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as {
    resources: string[];
  };
  return kustomization.resources.flatMap((file) => parseManifests(readFileSync(join(dir, file), "utf8")));
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind}/${name} in deploy/kubernetes`);
  return found;
}

/** Kubernetes' `$(VAR)` expansion in command and args. */
export function expand(arg: string, env: Record<string, string | undefined>): string {
  return arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
}

/**
 * The process a Deployment's first container runs: its args (the image's entrypoint is `skiff`),
 * its env (literal values, the Secret's keys, the pod's name) and its volumes under `dir`: a config
 * map's keys written as files, an emptyDir as an empty directory. Paths under a mount are rewritten
 * to the local directory, in args and env alike.
 */
export function podProcess(
  objects: K8sObject[],
  deployment: string,
  dir: string,
  podName = `${deployment}-7d9f8-abcde`,
): ProcessRun {
  const pod = find(objects, "Deployment", deployment).spec.template.spec;
  const [container] = pod.containers;
  const secretData = (name: string): Record<string, string> => find(objects, "Secret", name).stringData;
  const env: Record<string, string | undefined> = {};
  for (const from of container.envFrom ?? []) Object.assign(env, secretData(from.secretRef.name));
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef)
      env[e.name] = secretData(e.valueFrom.secretKeyRef.name)[e.valueFrom.secretKeyRef.key];
    else if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") env[e.name] = podName;
    else throw new Error(`${deployment}: env ${e.name} comes from somewhere this check cannot follow`);
  }
  const mounts: [string, string][] = [];
  for (const m of container.volumeMounts ?? []) {
    if (m.mountPath === "/tmp") continue;
    const local = join(dir, deployment, m.name);
    mkdirSync(local, { recursive: true });
    const volume = pod.volumes.find((v: { name: string }) => v.name === m.name);
    if (volume?.configMap) {
      const data: Record<string, string> = find(objects, "ConfigMap", volume.configMap.name).data;
      for (const [key, text] of Object.entries(data)) writeFileSync(join(local, key), text);
    }
    mounts.push([m.mountPath, local]);
  }
  const local = (value: string) => {
    for (const [path, to] of mounts)
      if (value === path || value.startsWith(`${path}/`)) return to + value.slice(path.length);
    return value;
  };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) env[k] = local(v);
  const args = [...(container.command ?? []), ...(container.args ?? [])].map((a: string) =>
    local(expand(a, env)),
  );
  return { args, env };
}

/** `${NAME:-default}` and `${NAME}` as compose interpolates them. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (_, name: string, fallback?: string) => {
      const v = env[name];
      return v === undefined || v === "" ? (fallback ?? "") : v;
    },
  );
}

/**
 * A service of docker-compose.local.yml: its command and environment as compose would pass them,
 * with `interpolation` standing in for the shell `pnpm local:up` runs compose from. SKIFF_HOME is the
 * image's (/var/lib/skiff, a tmpfs or volume there), mapped to `home`.
 */
export function composeProcess(
  service: string,
  home: string,
  interpolation: Record<string, string>,
): ProcessRun {
  const doc = parse(readFileSync(join(root, "docker-compose.local.yml"), "utf8"), { merge: true }) as {
    services: Record<
      string,
      { command: string[]; entrypoint?: string[]; environment?: Record<string, string> }
    >;
  };
  const s = doc.services[service];
  if (!s) throw new Error(`no service ${service} in docker-compose.local.yml`);
  const env: Record<string, string | undefined> = { SKIFF_HOME: home };
  for (const [k, v] of Object.entries(s.environment ?? {})) env[k] = interpolate(String(v), interpolation);
  const args = s.command.map((a) => interpolate(a, interpolation));
  if (!s.entrypoint) return { args, env };
  // The worker's shell entrypoint: `exec skiff worker --name "<its container id>" "$@"`.
  const script = s.entrypoint[2] ?? "";
  const m = /^exec skiff (\w+) --name "\$\$\(.+\)" "\$\$@"$/.exec(script);
  if (s.entrypoint[0] !== "/bin/sh" || s.entrypoint[1] !== "-c" || !m?.[1])
    throw new Error(`${service}: an entrypoint this check cannot follow: ${s.entrypoint.join(" ")}`);
  return { args: [m[1], "--name", "0123456789ab", ...args], env };
}

/** Replaces the value after `flag` in `args` (which must have it). */
export function withFlag(args: string[], flag: string, value: string): string[] {
  const i = args.indexOf(flag);
  if (i < 0 || i + 1 >= args.length) throw new Error(`${flag} is not in ${args.join(" ")}`);
  return [...args.slice(0, i + 1), value, ...args.slice(i + 2)];
}
