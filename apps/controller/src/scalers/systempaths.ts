import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, request } from "node:http";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * `security_opt: [systempaths=unconfined]` for compose v1.
 *
 * The Engine API has no such security option: the Docker CLI and compose v2 turn it into empty
 * `MaskedPaths` and `ReadonlyPaths` in the container's HostConfig. Compose v1 (docker-compose 1.x,
 * still what Debian 12 ships) passes it through as written, and the engine refuses the container.
 * A worker that sandboxes with bubblewrap needs it: the kernel lets bwrap mount a fresh /proc only
 * when no part of the container's /proc is masked.
 *
 * This is a pass-through of the engine's socket that does what v2 does, for container creation
 * only: every other request, and every byte of every response, is forwarded unchanged. The compose
 * scaler points compose v1 at it (DOCKER_HOST); it listens on a socket in a fresh 0700 directory.
 */
export interface SystemPathsProxy {
  /** The proxy's socket, for DOCKER_HOST=unix://… */
  socketPath: string;
  close(): Promise<void>;
}

const OPTION = "systempaths=unconfined";

/** The body of `POST /containers/create` with the option translated; unchanged when it is absent. */
export function translateCreate(body: Buffer): Buffer {
  let spec: { HostConfig?: { SecurityOpt?: string[]; MaskedPaths?: string[]; ReadonlyPaths?: string[] } };
  try {
    spec = JSON.parse(body.toString("utf8"));
  } catch {
    return body; // not ours to judge: the engine answers with its own error
  }
  const host = spec.HostConfig;
  if (!host?.SecurityOpt?.includes(OPTION)) return body;
  host.SecurityOpt = host.SecurityOpt.filter((o) => o !== OPTION);
  host.MaskedPaths = [];
  host.ReadonlyPaths = [];
  return Buffer.from(JSON.stringify(spec));
}

/** An answer's status line and headers as the engine sent them, for a connection relayed raw. */
function statusAndHeaders(answer: IncomingMessage): string {
  const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
  for (let i = 0; i < answer.rawHeaders.length; i += 2)
    lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

const CREATE = /^\/(v[0-9.]+\/)?containers\/create(\?|$)/;

export async function startSystemPathsProxy(engineSocket: string): Promise<SystemPathsProxy> {
  const dir = mkdtempSync(join(tmpdir(), "skiff-engine-"));
  const socketPath = join(dir, "docker.sock");
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const create = req.method === "POST" && CREATE.test(req.url ?? "");
    const forward = (body: Buffer | null) => {
      const headers = { ...req.headers };
      if (body) {
        headers["content-length"] = String(body.length);
        delete headers["transfer-encoding"];
      }
      const upstream = request(
        { socketPath: engineSocket, method: req.method, path: req.url, headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          // At once: a client may wait for the headers of a long answer (wait, events) to go on.
          res.flushHeaders();
          answer.pipe(res);
        },
      );
      upstream.on("error", (err) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: `skiff engine proxy: ${err.message}` }));
      });
      if (body) upstream.end(body);
      else req.pipe(upstream);
    };
    if (!create) return forward(null);
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => forward(translateCreate(Buffer.concat(chunks))));
  });
  // Attach and exec hijack the connection: splice the two sockets together once upgraded.
  server.on("upgrade", (req, client: Socket, head) => {
    const upstream = request({
      socketPath: engineSocket,
      method: req.method,
      path: req.url,
      headers: req.headers,
    });
    upstream.on("upgrade", (answer, engine, engineHead) => {
      client.write(statusAndHeaders(answer));
      if (engineHead.length) client.write(engineHead);
      engine.pipe(client).pipe(engine);
      engine.on("error", () => client.destroy());
      client.on("error", () => engine.destroy());
    });
    // Not upgraded after all (a 404, a refusal): relay the answer as it is.
    upstream.on("response", (answer) => {
      client.write(statusAndHeaders(answer));
      answer.pipe(client);
    });
    upstream.on("error", () => client.destroy());
    // A body that came with the upgrade request (exec start's options) goes before the answer.
    upstream.end(head.length ? head : undefined);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, resolve);
  });
  return {
    socketPath,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
