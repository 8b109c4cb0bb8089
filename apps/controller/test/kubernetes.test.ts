import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Scaler } from "../src/index.ts";
import { createKubernetesScaler, KubernetesScalerError } from "../src/scalers/kubernetes.ts";
import { FakeKube } from "./support/fake-kube.ts";

const NS = "skiff";
const DEPLOY = "skiff-worker";
const SCALE = `/apis/apps/v1/namespaces/${NS}/deployments/${DEPLOY}/scale`;
const PODS = `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dskiff-worker`;
const MERGE = "application/merge-patch+json";

describe("against a fake Kubernetes API server (no cluster can run here)", () => {
  let kube: FakeKube;
  let scaler: Scaler;
  let dir: string;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-kube-"));
    kube = new FakeKube(NS, DEPLOY, 1);
    await kube.start();
    scaler = createKubernetesScaler({
      namespace: NS,
      deployment: DEPLOY,
      kubeconfig: kube.writeKubeconfig(dir, "sa-token"),
    });
  });
  afterEach(async () => {
    await scaler.close();
    await kube.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const calls = () => kube.requests.map((r) => [r.method, r.path]);

  it("add() patches the replicas; sync() reads them and the pod names", async () => {
    await scaler.add(2);
    expect(calls()).toEqual([
      ["GET", SCALE],
      ["PATCH", SCALE],
    ]);
    const patch = kube.requests[1];
    expect(patch?.contentType).toBe(MERGE);
    expect(patch?.body).toEqual({ metadata: { resourceVersion: "1" }, spec: { replicas: 3 } });
    expect(patch?.authorization).toBe("Bearer sa-token");
    expect(kube.replicas).toBe(3);
    // Before the pods are read, the new replicas already count, so the controller does not ask twice.
    expect(scaler.list()).toHaveLength(3);

    kube.requests.length = 0;
    await scaler.sync?.();
    expect(calls()).toEqual([
      ["GET", SCALE],
      ["GET", PODS],
    ]);
    expect(scaler.list()).toEqual(kube.pods.map((p) => p.name));
    expect(scaler.list()).toHaveLength(3);
  });

  it("release() gives the drained pod the lowest deletion cost, then scales down by one", async () => {
    await scaler.add(2);
    await scaler.sync?.();
    const [first, drained, third] = scaler.list();
    expect(drained).toBeDefined();
    kube.requests.length = 0;

    await scaler.release?.(drained ?? "");
    expect(calls()).toEqual([
      ["PATCH", `/api/v1/namespaces/${NS}/pods/${drained}`],
      ["GET", SCALE],
      ["PATCH", SCALE],
    ]);
    expect(kube.requests[0]?.contentType).toBe(MERGE);
    expect(kube.requests[0]?.body).toEqual({
      metadata: { annotations: { "controller.kubernetes.io/pod-deletion-cost": "-1000" } },
    });
    expect(kube.requests[2]?.body).toEqual({
      metadata: { resourceVersion: String(kube.resourceVersion - 1) },
      spec: { replicas: 2 },
    });
    // The fake ReplicaSet removed the pod with the lowest cost: the drained one, not the other two.
    await scaler.sync?.();
    expect(scaler.list()).toEqual([first, third]);
  });

  it("retries a scale update that meets 409 Conflict with the fresh resourceVersion", async () => {
    kube.conflicts = 1;
    await scaler.add(1);
    expect(calls()).toEqual([
      ["GET", SCALE],
      ["PATCH", SCALE],
      ["GET", SCALE],
      ["PATCH", SCALE],
    ]);
    expect(kube.requests[1]?.body).toEqual({ metadata: { resourceVersion: "1" }, spec: { replicas: 2 } });
    // The conflicting writer moved the resourceVersion on; the retry reads and sends the new one.
    expect(kube.requests[3]?.body).toEqual({ metadata: { resourceVersion: "2" }, spec: { replicas: 2 } });
    expect(kube.replicas).toBe(2);
  });

  it("gives up with a clear error when every scale update conflicts", async () => {
    kube.conflicts = 100;
    await expect(scaler.add(1)).rejects.toThrow(
      /scale of deployment skiff\/skiff-worker changed under every one of 5 updates \(409 Conflict/,
    );
    expect(kube.requests.filter((r) => r.method === "PATCH")).toHaveLength(5);
    expect(kube.replicas).toBe(1);
  });

  it("explains a 403 with the verb, the resource and the Role that grants it", async () => {
    kube.forbid("patch", "deployments/scale");
    const err = await scaler.add(1).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(KubernetesScalerError);
    const message = err instanceof Error ? err.message : "";
    expect(err).toMatchObject({ code: "forbidden" });
    expect(message).toContain("forbidden to patch deployments/scale in namespace skiff");
    expect(message).toContain('the Role "skiff-controller" from deploy/kubernetes/controller-rbac.yaml');
    expect(message).toContain('cannot patch resource "deployments/scale"');
    expect(kube.replicas).toBe(1);
  });
});
