import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
} from "@kubernetes/client-node";
import { z } from "zod";
import type { Scaler } from "./types.ts";

export interface KubernetesScalerOptions {
  namespace: string;
  /** The worker Deployment. */
  deployment: string;
  /**
   * A kubeconfig file. Without one: the in-cluster service account when `KUBERNETES_SERVICE_HOST` is
   * set, else `$KUBECONFIG` or `~/.kube/config`.
   */
  kubeconfig?: string;
  /** How many times a scale update that meets 409 Conflict is read and written again (default 5). */
  conflictAttempts?: number;
  onEvent?(msg: string, fields: Record<string, unknown>): void;
}

/** The Role (in deploy/kubernetes) that grants what this scaler does; named in every 403 message. */
export const KUBERNETES_SCALER_RBAC = {
  role: "skiff-controller",
  file: "deploy/kubernetes/controller-rbac.yaml",
  rules: [
    "get, patch deployments/scale (apps)",
    "list pods",
    "patch pods (the pod-deletion-cost annotation)",
  ],
} as const;

/** Pods with the lowest cost go first when a ReplicaSet scales down (Kubernetes ≥ 1.22). */
export const POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

export type KubernetesScalerErrorCode = "forbidden" | "conflict" | "kubernetes_api";

export class KubernetesScalerError extends Error {
  constructor(
    readonly code: KubernetesScalerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "KubernetesScalerError";
  }
}

const Status = z.object({ message: z.string() });
const MERGE_PATCH = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

function statusMessage(body: unknown): string {
  let value = body;
  if (typeof body === "string") {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim();
    }
  }
  const parsed = Status.safeParse(value);
  return parsed.success ? parsed.data.message : "";
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

const live = (p: V1Pod) =>
  !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";

/**
 * Workers as the pods of one Deployment, scaled through its `/scale` subresource. A worker's name is
 * its pod's name: the Deployment runs `skiff worker --name $(POD_NAME)` with `POD_NAME` from the
 * downward API (`valueFrom.fieldRef.fieldPath: metadata.name`).
 *
 * `list()` is the pods that are not terminating, plus a placeholder (`<deployment>-pending-<i>`) for
 * each replica asked for whose pod does not exist yet, so the controller does not ask twice for the
 * same workers; a placeholder never registers, so it is never drained.
 *
 * Scale-down: once a drained worker has deregistered, `release()` gives its pod the lowest
 * pod-deletion-cost and then lowers the replicas by one, so the ReplicaSet removes that pod and not a
 * busy one. Every scale change is a read-modify-write guarded by the Scale's resourceVersion and is
 * retried on 409 Conflict. A 403 names the verb, the resource and the Role that grants it.
 */
export function createKubernetesScaler(opts: KubernetesScalerOptions): Scaler {
  const kc = loadKubeConfig(opts.kubeconfig);
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace, deployment } = opts;
  const attempts = Math.max(1, opts.conflictAttempts ?? 5);
  let replicas = 0;
  let pods: string[] = [];
  /** Released pods, hidden from `list()` until the ReplicaSet has them terminating. */
  const released = new Set<string>();

  const call = async <T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiException)) {
        const why = err instanceof Error ? err.message : String(err);
        throw new KubernetesScalerError(
          "kubernetes_api",
          `kubernetes scaler: ${verb} ${resource} in namespace ${namespace} failed: ${why}`,
          { cause: err },
        );
      }
      const said = statusMessage(err.body);
      const tail = said ? ` (API server: ${said})` : "";
      if (err.code === 403) {
        const { role, file } = KUBERNETES_SCALER_RBAC;
        throw new KubernetesScalerError(
          "forbidden",
          `kubernetes scaler: forbidden to ${verb} ${resource} in namespace ${namespace}: the controller's ` +
            `service account needs the Role "${role}" from ${file} and its RoleBinding ` +
            `(kubectl apply -k deploy/kubernetes)${tail}`,
          { cause: err },
        );
      }
      throw new KubernetesScalerError(
        err.code === 409 ? "conflict" : "kubernetes_api",
        `kubernetes scaler: ${verb} ${resource} in namespace ${namespace} failed: HTTP ${err.code}${tail}`,
        { cause: err },
      );
    }
  };

  const readScale = () =>
    call("get", "deployments/scale", () =>
      apps.readNamespacedDeploymentScale({ name: deployment, namespace }),
    );

  /** Read-modify-write of spec.replicas; the resourceVersion makes a concurrent change a 409. */
  const updateScale = async (change: (current: number) => number): Promise<number> => {
    for (let attempt = 1; ; attempt++) {
      const scale = await readScale();
      const from = scale.spec?.replicas ?? 0;
      const to = Math.max(0, change(from));
      const body = { metadata: { resourceVersion: scale.metadata?.resourceVersion }, spec: { replicas: to } };
      try {
        await call("patch", "deployments/scale", () =>
          apps.patchNamespacedDeploymentScale({ name: deployment, namespace, body }, MERGE_PATCH),
        );
        replicas = to;
        opts.onEvent?.("deployment scaled", { deployment, from, to });
        return to;
      } catch (err) {
        if (!(err instanceof KubernetesScalerError) || err.code !== "conflict") throw err;
        if (attempt >= attempts) {
          throw new KubernetesScalerError(
            "conflict",
            `kubernetes scaler: the scale of deployment ${namespace}/${deployment} changed under every one ` +
              `of ${attempts} updates (409 Conflict each time); something else keeps scaling it ` +
              "(an HPA, another controller?)",
            { cause: err },
          );
        }
        opts.onEvent?.("scale update conflicted; reading it again", { deployment, attempt });
      }
    }
  };

  return {
    kind: "kubernetes",
    list() {
      const pending = Math.max(0, replicas - pods.length);
      return [...pods, ...Array.from({ length: pending }, (_, i) => `${deployment}-pending-${i + 1}`)];
    },
    async sync() {
      const scale = await readScale();
      const selector = scale.status?.selector;
      if (!selector)
        throw new KubernetesScalerError(
          "kubernetes_api",
          `kubernetes scaler: deployment ${namespace}/${deployment} reports no selector in its scale status`,
        );
      const list = await call("list", "pods", () =>
        core.listNamespacedPod({ namespace, labelSelector: selector }),
      );
      const names = list.items.filter(live).flatMap((p) => (p.metadata?.name ? [p.metadata.name] : []));
      for (const name of released) if (!names.includes(name)) released.delete(name);
      replicas = scale.spec?.replicas ?? 0;
      pods = names.filter((n) => !released.has(n));
    },
    async add(n) {
      await updateScale((current) => current + n);
    },
    async release(name) {
      const body = { metadata: { annotations: { [POD_DELETION_COST]: "-1000" } } };
      try {
        await call("patch", "pods", () => core.patchNamespacedPod({ name, namespace, body }, MERGE_PATCH));
      } catch (err) {
        // Already gone: the count still has to come down by the worker that drained.
        if (
          !(
            err instanceof KubernetesScalerError &&
            err.cause instanceof ApiException &&
            err.cause.code === 404
          )
        )
          throw err;
      }
      released.add(name);
      pods = pods.filter((p) => p !== name);
      await updateScale((current) => current - 1);
    },
    async close() {},
  };
}
