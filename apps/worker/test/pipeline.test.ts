import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { describeWith } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parse } from "yaml";
import { slirpAvailable } from "../src/sandbox/egress.ts";
import { canMakeNamespaces, type Internet, startInternet } from "./internet.ts";
import { type Stack, startStack } from "./stack.ts";
import { bwrapGate } from "./support.ts";

const template = new URL("../../../template/deploy-root/jobs/dependency-update.yaml", import.meta.url)
  .pathname;

/** Serves a directory over HTTP (git's dumb protocol and npm tarballs) and counts /phone calls. */
async function serve(
  root: string,
  host: string,
): Promise<{ server: Server; port: number; phoneCalls: () => number }> {
  let phone = 0;
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/"));
    if (path === "/phone") {
      phone++;
      res.end("got you");
      return;
    }
    try {
      res.end(readFileSync(join(root, path)));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const addr = server.address();
  if (!addr || typeof addr !== "object") throw new Error("no address");
  return { server, port: addr.port, phoneCalls: () => phone };
}

function git(cwd: string, ...args: string[]) {
  execFileSync(
    "git",
    ["-c", "user.email=ci@skiff.test", "-c", "user.name=CI", "-c", "init.defaultBranch=main", ...args],
    {
      cwd,
      stdio: "ignore",
    },
  );
}

/** A package tarball as npm makes them, and two repositories that depend on it by URL. */
function makeFixtures(root: string, host: string, port: number) {
  const pkg = join(root, "pkg", "package");
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, "package.json"),
    JSON.stringify({ name: "leftpad-local", version: "1.0.0", main: "index.js" }),
  );
  writeFileSync(join(pkg, "index.js"), "module.exports = (s, n) => String(s).padStart(n, '.');\n");
  execFileSync("tar", ["czf", join(root, "leftpad-local-1.0.0.tgz"), "-C", join(root, "pkg"), "package"]);

  for (const variant of ["app", "phone-home"]) {
    const src = join(root, `src-${variant}`);
    mkdirSync(src, { recursive: true });
    writeFileSync(
      join(src, "package.json"),
      JSON.stringify({
        name: variant,
        version: "1.0.0",
        scripts: { build: "node build.js", test: "node test.js" },
        dependencies: { "leftpad-local": `http://${host}:${port}/leftpad-local-1.0.0.tgz` },
      }),
    );
    writeFileSync(
      join(src, "build.js"),
      "const pad = require('leftpad-local'); require('fs').mkdirSync('dist', {recursive: true});\n" +
        "require('fs').writeFileSync('dist/out.txt', pad('built', 8)); console.log('build ok');\n",
    );
    const phone =
      variant === "phone-home"
        ? `require('http').get('http://${host}:${port}/phone', () => { console.log('phoned home'); })` +
          ".on('error', (e) => { console.error('cannot phone home: ' + e.code); process.exit(1); });\n"
        : "";
    writeFileSync(
      join(src, "test.js"),
      "const out = require('fs').readFileSync('dist/out.txt', 'utf8');\n" +
        "if (out !== '...built') { console.error('unexpected ' + out); process.exit(1); }\n" +
        `console.log('tests passed');\n${phone}`,
    );
    git(src, "init");
    git(src, "add", ".");
    git(src, "commit", "-m", "initial");
    git(root, "clone", "--bare", src, join(root, `${variant}.git`));
    git(join(root, `${variant}.git`), "update-server-info");
  }
}

const gate = bwrapGate();
const netGate =
  gate.available && !(canMakeNamespaces() && slirpAvailable())
    ? { available: false, missing: "needs root, iproute2 and slirp4netns for a stand-in internet" }
    : gate;

/**
 * The "internet" is the host's end of a veth pair the test makes (a host address, so `network: on`
 * steps reach it only because the worker's operator allows it), the same wall a private registry
 * behind an allowlist meets.
 */
describeWith(netGate, "the dependency-update pipeline from template/ [bwrap]", () => {
  let stack: Stack;
  let http: Awaited<ReturnType<typeof serve>>;
  let internet: Internet;
  let host: string;
  const root = mkdtempSync(join(tmpdir(), "skiff-pipeline-"));
  beforeAll(async () => {
    internet = await startInternet();
    host = internet.hostSide;
    http = await serve(root, host);
    makeFixtures(root, host, http.port);
    stack = await startStack({ queue: "pipeline", egressAllow: [`${host}/32`] });
  });
  afterAll(async () => {
    await stack?.close();
    await internet?.close();
    await new Promise<void>((r) => (http ? http.server.close(() => r()) : r()));
    rmSync(root, { recursive: true, force: true });
  });

  const job = (repo: string) => {
    const spec = parse(readFileSync(template, "utf8"));
    return {
      ...spec,
      queue: "pipeline",
      env: { ...spec.env, REPO_URL: `http://${host}:${http.port}/${repo}.git` },
    };
  };

  it("clones and installs with the network on, builds and tests with it off, and succeeds", async () => {
    const submitted = await stack.submit(job("app"));
    const done = await stack.final(submitted.id, 120_000);
    const text = (await stack.logs(submitted.id)).map((l) => l.text).join("\n");
    expect(done.state, text).toBe("succeeded");
    expect(done.steps.map((s: any) => [s.name, s.state])).toEqual([
      ["clone", "succeeded"],
      ["install", "succeeded"],
      ["build", "succeeded"],
      ["test", "succeeded"],
    ]);
    expect(text).toContain("build ok");
    expect(text).toContain("tests passed");
  });

  it("the same pipeline with a test that phones home fails at the test step, and nothing reached home", async () => {
    const submitted = await stack.submit(job("phone-home"));
    const done = await stack.final(submitted.id, 120_000);
    const text = (await stack.logs(submitted.id)).map((l) => l.text).join("\n");
    expect(done.state, text).toBe("failed");
    expect(done.steps.map((s: any) => s.state)).toEqual(["succeeded", "succeeded", "succeeded", "failed"]);
    expect(text).toMatch(/cannot phone home: (ECONNREFUSED|ENETUNREACH)/);
    expect(http.phoneCalls()).toBe(0);
  });
});
