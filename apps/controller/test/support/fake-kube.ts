import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { z } from "zod";

/**
 * A stand-in for the few Kubernetes API routes the kubernetes scaler calls, because no cluster can run
 * here: the Deployment's `/scale` subresource (GET, PATCH as a merge patch, PUT), the pod list by
 * label selector, and a merge PATCH of a pod. Scaling acts like a ReplicaSet would: new pods on the
 * way up; on the way down the pods with the lowest `controller.kubernetes.io/pod-deletion-cost` go
 * first (the newest among equals). It records every request, can answer 409 to the next scale
 * updates (as if someone else changed the scale in between) and 403 to a chosen verb and resource.
 */
export interface SeenRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

interface FakePod {
  name: string;
  annotations: Record<string, string>;
}

const ScaleUpdate = z.object({
  metadata: z.object({ resourceVersion: z.string().optional() }).optional(),
  spec: z.object({ replicas: z.number().int().min(0).optional() }).optional(),
});
const PodPatch = z.object({
  metadata: z.object({ annotations: z.record(z.string(), z.string()).optional() }).optional(),
});

export const SELECTOR = "app=skiff-worker";
const COST = "controller.kubernetes.io/pod-deletion-cost";

export class FakeKube {
  readonly requests: SeenRequest[] = [];
  replicas: number;
  resourceVersion = 1;
  pods: FakePod[] = [];
  /** Scale updates still to answer with 409 Conflict. */
  conflicts = 0;
  private readonly forbidden = new Set<string>();
  private server: Server | null = null;
  private nextPod = 1;
  url = "";

  constructor(
    readonly namespace: string,
    readonly deployment: string,
    replicas: number,
  ) {
    this.replicas = replicas;
    this.reconcile();
  }

  /** Answers 403 to `verb` on `resource` (e.g. "patch", "deployments/scale") from now on. */
  forbid(verb: string, resource: string): void {
    this.forbidden.add(`${verb} ${resource}`);
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void this.handle(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this.url;
  }

  /** A kubeconfig for the fake server: plain HTTP, so `insecure-skip-tls-verify` must be set. */
  writeKubeconfig(dir: string, token: string): string {
    const file = join(dir, "kubeconfig.yaml");
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "fake", cluster: { server: this.url, "insecure-skip-tls-verify": true } }],
      users: [{ name: "fake", user: { token } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "fake", namespace: this.namespace } }],
      "current-context": "fake",
    };
    writeFileSync(file, stringify(config), { mode: 0o600 });
    return file;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  }

  private reconcile(): void {
    while (this.pods.length < this.replicas) {
      this.pods.push({
        name: `${this.deployment}-7f9c-${String(this.nextPod++).padStart(5, "0")}`,
        annotations: {},
      });
    }
    while (this.pods.length > this.replicas) {
      const cost = (p: FakePod) => Number(p.annotations[COST] ?? "0");
      const victim = this.pods.reduce((a, b) => (cost(b) <= cost(a) ? b : a));
      this.pods = this.pods.filter((p) => p !== victim);
    }
  }

  private scale() {
    return {
      kind: "Scale",
      apiVersion: "autoscaling/v1",
      metadata: {
        name: this.deployment,
        namespace: this.namespace,
        resourceVersion: String(this.resourceVersion),
      },
      spec: { replicas: this.replicas },
      status: { replicas: this.pods.length, selector: SELECTOR },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString();
    const body: unknown = raw === "" ? undefined : JSON.parse(raw);
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    this.requests.push({
      method,
      path,
      contentType: req.headers["content-type"],
      authorization: req.headers.authorization,
      body,
    });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    const status = (code: number, reason: string, message: string) =>
      send(code, { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code });
    const url = new URL(path, "http://fake");
    const ns = this.namespace;
    const scalePath = `/apis/apps/v1/namespaces/${ns}/deployments/${this.deployment}/scale`;
    const podsPath = `/api/v1/namespaces/${ns}/pods`;
    const verb = { GET: "get", PATCH: "patch", PUT: "update" }[method] ?? method.toLowerCase();
    const resource =
      url.pathname === scalePath ? "deployments/scale" : url.pathname.startsWith(podsPath) ? "pods" : "";
    const shownVerb = url.pathname === podsPath && method === "GET" ? "list" : verb;
    if (this.forbidden.has(`${shownVerb} ${resource}`)) {
      return status(
        403,
        "Forbidden",
        `${resource} is forbidden: User "system:serviceaccount:${ns}:skiff-controller" cannot ${shownVerb} resource "${resource}" in API group "" in the namespace "${ns}"`,
      );
    }
    if (url.pathname === scalePath) {
      if (method === "GET") return send(200, this.scale());
      if (method !== "PATCH" && method !== "PUT")
        return status(405, "MethodNotAllowed", "method not allowed");
      const update = ScaleUpdate.parse(body);
      if (this.conflicts > 0) {
        this.conflicts--;
        this.resourceVersion++; // someone else got there first
        return status(
          409,
          "Conflict",
          "the object has been modified; please apply your changes to the latest version and try again",
        );
      }
      const rv = update.metadata?.resourceVersion;
      if (rv !== undefined && rv !== String(this.resourceVersion))
        return status(
          409,
          "Conflict",
          "the object has been modified; please apply your changes to the latest version and try again",
        );
      if (typeof update.spec?.replicas === "number") this.replicas = update.spec.replicas;
      this.resourceVersion++;
      this.reconcile();
      return send(200, this.scale());
    }
    if (url.pathname === podsPath && method === "GET") {
      const matches = url.searchParams.get("labelSelector") === SELECTOR;
      const items = (matches ? this.pods : []).map((p) => ({
        metadata: {
          name: p.name,
          namespace: ns,
          labels: { app: "skiff-worker" },
          annotations: p.annotations,
        },
        status: { phase: "Running" },
      }));
      return send(200, {
        kind: "PodList",
        apiVersion: "v1",
        metadata: { resourceVersion: String(this.resourceVersion) },
        items,
      });
    }
    if (url.pathname.startsWith(`${podsPath}/`) && method === "PATCH") {
      const pod = this.pods.find((p) => p.name === url.pathname.slice(podsPath.length + 1));
      if (!pod) return status(404, "NotFound", "pod not found");
      const patch = PodPatch.parse(body);
      Object.assign(pod.annotations, patch.metadata?.annotations ?? {});
      return send(200, { metadata: { name: pod.name, namespace: ns, annotations: pod.annotations } });
    }
    return status(404, "NotFound", `no route for ${method} ${url.pathname} in the fake`);
  }
}
