import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../api/test/harness.ts";
import { registerAgents } from "../src/commands/agents.ts";
import { registerAudit } from "../src/commands/audit.ts";
import { registerController } from "../src/commands/controller.ts";
import { registerDoctor } from "../src/commands/doctor.ts";
import { registerFleet } from "../src/commands/fleet.ts";
import { registerJobs } from "../src/commands/jobs.ts";
import { registerServe } from "../src/commands/serve.ts";
import { registerTokens } from "../src/commands/tokens.ts";
import { registerTui } from "../src/commands/tui.ts";
import { registerWorker } from "../src/commands/worker.ts";
import { emptyHome, freePort, killLeftovers, runCli } from "./cli.ts";

/**
 * The error table: for each mistake a user makes or meets, the message says what is wrong and what
 * to do, and the exit code is the one the docs promise (0 ok, 1 failed, 2 usage, 3 auth).
 */

const dir = mkdtempSync(join(tmpdir(), "skiff-errors-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

let t: TestApi;
let html: Server;
let htmlUrl = "";

beforeAll(async () => {
  t = await startTestApi({ adapter: "pglite" });
  // Some other web server where the API should be: a page for every path, 200 or 404.
  html = createServer((req, res) => {
    res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html" });
    res.end("<!doctype html><html><body><h1>Welcome to nginx: it works</h1></body></html>");
  });
  await new Promise<void>((r) => html.listen(0, "127.0.0.1", r));
  const addr = html.address();
  htmlUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

afterEach(() => {
  expect(killLeftovers(), "CLI processes left running").toBe(0);
});

afterAll(async () => {
  await new Promise((r) => html?.close(r));
  await t?.close();
});

describe("errors a user can act on", { timeout: 120_000 }, () => {
  it("a busy port names the port and --port, exit 1", async () => {
    const blocker = createTcpServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const addr = blocker.address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    try {
      const res = await runCli(["up", "--no-tui", "--workers", "0", "--port", String(port)], {
        SKIFF_HOME: emptyHome(),
      });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain(`skiff: port ${port} on 127.0.0.1 is in use`);
      expect(res.stderr).toContain("hint: stop that process, or pass --port with another port");
      expect(res.stderr).not.toContain("EADDRINUSE");
    } finally {
      blocker.close();
    }
  });

  it("PostgreSQL down names the database and its URL without the password, and what to check", async () => {
    const port = await freePort();
    const url = `postgres://skiff:s3cret-pw@127.0.0.1:${port}/skiff`;
    const [api, controller] = await Promise.all([
      runCli(["api", "--port", "0"], {
        SKIFF_HOME: emptyHome(),
        DATABASE_URL: url,
        REDIS_URL: "redis://127.0.0.1:1",
      }),
      runCli(["controller", "--port", "0"], { SKIFF_HOME: emptyHome(), DATABASE_URL: url }),
    ]);
    for (const res of [api, controller]) {
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain(
        `skiff: cannot use the PostgreSQL database at postgres://skiff@127.0.0.1:${port}/skiff (DATABASE_URL): connection refused`,
      );
      expect(res.stderr).toContain(
        `hint: check that PostgreSQL is running and reachable at 127.0.0.1:${port}`,
      );
      expect(res.stderr).not.toContain("s3cret-pw");
    }
  });

  it("a directory as the job file says so, not EISDIR, exit 2", async () => {
    const res = await runCli(["jobs", "submit", "-f", dir], {
      SKIFF_URL: t.url,
      SKIFF_TOKEN: t.tokens.operator,
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      `skiff: cannot read job file ${dir}: it is a directory; -f takes one job file (YAML or JSON), e.g. -f jobs/hello.yaml\n`,
    );
  });

  it("a web server that is not Skiff at the API URL is named as such, its page not dumped", async () => {
    const job = file("hello.yaml", "name: hello\nsteps:\n  - { name: a, run: echo hi }\n");
    const [ls, submit] = await Promise.all([
      runCli(["jobs", "ls", "--api-url", htmlUrl, "--token", "skf_x"], {}),
      runCli(["jobs", "submit", "-f", job, "--api-url", `${htmlUrl}/`, "--token", "skf_x"], {}),
    ]);
    for (const res of [ls, submit]) {
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain(`skiff: the server at ${htmlUrl} is not a Skiff API`);
      expect(res.stderr).toContain("hint: check --api-url / SKIFF_URL");
      expect(res.stderr).not.toContain("<html");
    }
    expect(ls.stderr).toContain("GET /v1/jobs answered HTTP 404 with text/html, not JSON");
  });

  it("a config file with several problems lists them all, with the file and the near misses", async () => {
    const config = file(
      "many.yaml",
      [
        "databse:",
        "  url: postgres://x",
        "api:",
        "  port: eighty",
        "worker:",
        "  slotz: 2",
        "controller:",
        "  scaler: kubernets",
        "redis:",
        "  url: ${env.SKIFF_TEST_SURELY_UNSET}",
      ].join("\n"),
    );
    const res = await runCli(["api", "--config", config], {
      DATABASE_URL: "postgres://x",
      REDIS_URL: "redis://x",
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`skiff: ${config} has 5 problems:\n`);
    expect(res.stderr).toContain("  databse: unknown field; did you mean `database`?\n");
    expect(res.stderr).toContain("  worker.slotz: unknown field; did you mean `slots`?\n");
    expect(res.stderr).toMatch(/ {2}api\.port: .*expected number/);
    expect(res.stderr).toMatch(/ {2}controller\.scaler: .*"kubernetes"/);
    expect(res.stderr).toContain("  redis.url: ${env.SKIFF_TEST_SURELY_UNSET} is not set\n");
  });

  it("an unset ${env.X} names the file; a YAML error is shown whole, past its colons", async () => {
    const unset = file("unset.yaml", "database:\n  url: ${env.SKIFF_TEST_SURELY_UNSET}\n");
    const res = await runCli(["controller", "--config", unset], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(`skiff: ${unset}: database.url: \${env.SKIFF_TEST_SURELY_UNSET} is not set\n`);

    const broken = file("broken.yaml", "api:\n  host: a: b\n");
    const yaml = await runCli(["api", "--config", broken], {
      DATABASE_URL: "postgres://x",
      REDIS_URL: "redis://x",
    });
    expect(yaml.code).toBe(2);
    expect(yaml.stderr).toContain(`skiff: ${broken}: not valid YAML:`);
    expect(yaml.stderr).toContain("Nested mappings are not allowed in compact mappings at line 2, column 9:");
    expect(yaml.stderr).toContain("host: a: b");
  });

  it("an unknown field in a job file suggests the field meant", async () => {
    const job = file("typo.yaml", "name: typo\nsteps:\n  - name: a\n    runn: echo hi\n    netwrok: on\n");
    const res = await runCli(["jobs", "submit", "-f", job], {
      SKIFF_URL: t.url,
      SKIFF_TOKEN: t.tokens.operator,
    });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("  steps[0].runn: unknown field; did you mean `run`?\n");
    expect(res.stderr).toContain("  steps[0].netwrok: unknown field; did you mean `network`?\n");
  });

  it("exit codes: 0 ok, 1 failed, 2 usage, 3 auth", async () => {
    const env = { SKIFF_URL: t.url, SKIFF_HOME: emptyHome() };
    const [ok, failed, usage, badFlag, noToken, refused] = await Promise.all([
      runCli(["jobs", "ls"], { ...env, SKIFF_TOKEN: t.tokens.viewer }),
      runCli(["jobs", "ls", "--api-url", `http://127.0.0.1:${await freePort()}`], {
        ...env,
        SKIFF_TOKEN: "x",
      }),
      runCli(["jobs", "ls", "--colour"], env),
      runCli(["jobs", "ls", "--limit", "many"], { ...env, SKIFF_TOKEN: t.tokens.viewer }),
      runCli(["jobs", "ls"], env),
      runCli(["jobs", "ls"], { ...env, SKIFF_TOKEN: "skf_not_a_token" }),
    ]);
    expect([ok.code, failed.code, usage.code, badFlag.code, noToken.code, refused.code]).toEqual([
      0, 1, 2, 2, 3, 3,
    ]);
  });
});

describe("one name for the API address", () => {
  function program(): Command {
    const p = new Command("skiff");
    for (const register of [
      registerServe,
      registerController,
      registerWorker,
      registerDoctor,
      registerJobs,
      registerAgents,
      registerFleet,
      registerAudit,
      registerTokens,
      registerTui,
    ])
      register(p);
    return p;
  }
  const leaves = (c: Command): Command[] => (c.commands.length === 0 ? [c] : c.commands.flatMap(leaves));

  it("every command that takes the API's address calls it --api-url; --base-url is a hidden alias", () => {
    const withUrl = leaves(program()).filter((c) =>
      c.options.some((o) => /^--(api|base)-url$/.test(o.long ?? "")),
    );
    expect(withUrl.map((c) => c.name())).toEqual(
      expect.arrayContaining(["worker", "controller", "doctor", "submit", "ls", "tui", "scale", "verify"]),
    );
    for (const c of withUrl) {
      const help = c.helpInformation();
      expect(help, c.name()).toContain("--api-url <url>");
      expect(help, c.name()).not.toContain("--base-url");
    }
  });

  it("--base-url still works", async () => {
    const res = await runCli(["jobs", "ls", "--base-url", t.url, "--token", t.tokens.viewer], {
      SKIFF_HOME: emptyHome(),
    });
    expect(res.code, res.stderr).toBe(0);
  });
});
