import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@skiff/testkit";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../../api/test/harness.ts";
import { createLogger, logFormat } from "../src/log.ts";
import { emptyHome, freePort, killLeftovers, runCli, startCli } from "./cli.ts";
import { root } from "./deployments.ts";

/**
 * Logs: pretty on a terminal, JSON lines in a pipe, `--log-format` and SKIFF_LOG_FORMAT to choose;
 * no key twice on a line; the start-up banner in one piece before the first log line. The terminal
 * is a real pseudo-terminal (`script`), the processes real `skiff` commands.
 */

/** The keys that appear twice in one object anywhere in a JSON text (JSON.parse keeps the last silently). */
function duplicateKeys(text: string): string[] {
  const dups: string[] = [];
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? "")) i++;
  };
  const str = (): string => {
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
    const s = JSON.parse(text.slice(i, j + 1)) as string;
    i = j + 1;
    return s;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") i++;
      else
        for (;;) {
          ws();
          const key = str();
          if (seen.has(key)) dups.push(key);
          seen.add(key);
          ws();
          i++; // the colon
          value();
          if (text[i++] === "}") break;
        }
    } else if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") i++;
      else
        for (;;) {
          value();
          if (text[i++] === "]") break;
        }
    } else if (c === '"') str();
    else while (i < text.length && !/[,}\]\s]/.test(text[i] ?? "")) i++;
    ws();
  };
  value();
  return dups;
}

/** A `skiff` command on a pseudo-terminal of its own; `ctrlC()` types Ctrl-C into it. */
function onTerminal(args: string[], env: Record<string, string>, size?: { rows: number; cols: number }) {
  // `exec`: script(1) runs the command through $SHELL, or /bin/sh when SHELL is unset (as under
  // CI). dash does not exec a lone command: it stays as the parent, takes the same Ctrl-C, and
  // once node has shut down cleanly it dies of that SIGINT itself, so script reports 130.
  const command = [
    ...(size ? [`stty rows ${size.rows} cols ${size.cols};`] : []),
    "exec",
    "node",
    "--import",
    "tsx",
    "apps/cli/src/main.ts",
    ...args,
  ].join(" ");
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith("SKIFF_") && v !== undefined) base[k] = v;
  const child: ChildProcess = spawn("script", ["-qfec", command, "/dev/null"], {
    cwd: root,
    env: { ...base, TERM: "xterm", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    output: () => output.replace(/\r/g, ""),
    ctrlC: () => child.stdin?.write("\u0003"),
    /** Signals node itself (script's child), as a launcher relaying a signal would. */
    signal(sig: NodeJS.Signals) {
      const node = execFileSync("pgrep", ["-P", String(child.pid)])
        .toString()
        .trim()
        .split("\n")[0];
      process.kill(Number(node), sig);
    },
    exited,
    async stop(): Promise<number | null> {
      child.stdin?.write("\u0003");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: colour escapes are what a terminal gets
const plain = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, "");

let t: TestApi;
let agentToken = "";

beforeAll(async () => {
  t = await startTestApi({ adapter: "pglite" });
  agentToken = t.tokens.agent;
});

afterEach(() => {
  expect(killLeftovers(), "CLI processes left running").toBe(0);
});

afterAll(async () => {
  await t?.close();
});

const worker = (name: string, ...extra: string[]) => [
  "worker",
  "--api-url",
  t.url,
  "--token",
  agentToken,
  "--name",
  name,
  "--health-port",
  "0",
  "--unsafe-no-sandbox",
  ...extra,
];

/** Waits for `skiff up` to log ready, then types Ctrl-C and expects a clean exit (0), either way. */
async function untilReadyThenCtrlC(up: ReturnType<typeof onTerminal>): Promise<void> {
  try {
    await waitFor(
      "skiff up to log ready",
      () => /INFO.*\(skiff-up\).*ready/.test(plain(up.output())),
      90_000,
      100,
    );
  } finally {
    expect(await up.stop(), up.output()).toBe(0);
  }
}

describe("log format", { timeout: 180_000 }, () => {
  it("on a terminal: the banner whole, then pretty lines; Ctrl-C stops it", async () => {
    const up = onTerminal(["up", "--no-tui", "--workers", "0", "--port", "0"], { SKIFF_HOME: emptyHome() });
    await untilReadyThenCtrlC(up);
    const lines = plain(up.output()).split("\n");
    const bannerStart = lines.findIndex((l) => l.startsWith("skiff up: API listening on "));
    const bannerEnd = lines.findIndex((l) => l.startsWith("  console      "));
    const firstLog = lines.findIndex((l) => /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR)/.test(l));
    expect(bannerStart, up.output()).toBe(0);
    expect(bannerEnd).toBeGreaterThan(bannerStart);
    expect(firstLog).toBeGreaterThan(bannerEnd);
    // Every line of the banner is the banner's: no log line between its first and last.
    for (const l of lines.slice(bannerStart + 1, bannerEnd + 1)) expect(l).toMatch(/^ {2}\S/);
    expect(lines.some((l) => l.startsWith('{"level"'))).toBe(false);
    expect(up.output()).toContain("\u001b[32mINFO"); // in colour
  });

  it("on a terminal too small to draw on (0×0), skiff up runs headless and says why, rather than crash", async () => {
    const up = onTerminal(["up", "--workers", "0", "--port", "0"], { SKIFF_HOME: emptyHome() });
    await untilReadyThenCtrlC(up);
    const out = plain(up.output());
    expect(out).toContain("(not here: the terminal is 0×0; the console needs at least 40×12)");
    expect(out).not.toContain("crashed");
  });

  it("with the console attached, a signal that arrives twice (relayed by a launcher) still drains and stops cleanly", async () => {
    const up = onTerminal(
      ["up", "--workers", "0", "--port", "0"],
      { SKIFF_HOME: emptyHome() },
      { rows: 40, cols: 120 },
    );
    await waitFor("the console to draw", () => plain(up.output()).includes("Overview"), 90_000, 100);
    up.signal("SIGINT");
    up.signal("SIGINT");
    const timer = setTimeout(() => up.ctrlC(), 60_000);
    const code = await up.exited;
    clearTimeout(timer);
    expect(code, up.output()).toBe(0);
    expect(plain(up.output())).toContain("console closed; draining workers and stopping");
    expect(plain(up.output())).not.toContain("exiting now");
  });

  it("on a terminal, --log-format json and SKIFF_LOG_FORMAT=json give JSON lines", async () => {
    const byFlag = onTerminal(worker("tty-flag", "--log-format", "json"), {});
    const byEnv = onTerminal(worker("tty-env"), { SKIFF_LOG_FORMAT: "json" });
    try {
      for (const w of [byFlag, byEnv])
        await waitFor(
          "the worker to log registered",
          () => w.output().includes('"msg":"registered"'),
          60_000,
          100,
        );
    } finally {
      await Promise.all([byFlag.stop(), byEnv.stop()]);
    }
    for (const w of [byFlag, byEnv]) {
      const logLines = w
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"));
      expect(logLines.length).toBeGreaterThan(0);
      for (const l of logLines) expect(JSON.parse(l)).toMatchObject({ name: "skiff-worker" });
      expect(w.output()).not.toMatch(/\] INFO/);
    }
  });

  it("in a pipe: JSON lines, or pretty with SKIFF_LOG_FORMAT=pretty; a bad value is a usage error", async () => {
    const json = startCli(worker("pipe-json"), {});
    const pretty = startCli(worker("pipe-pretty"), { SKIFF_LOG_FORMAT: "pretty" });
    try {
      await json.waitForOutput('"msg":"registered"', 60_000);
      await pretty.waitForOutput(/INFO \(skiff-worker\): registered/, 60_000);
    } finally {
      json.child.kill("SIGTERM");
      pretty.child.kill("SIGTERM");
    }
    const [j, p] = await Promise.all([json.done, pretty.done]);
    expect(
      j.stdout
        .split("\n")
        .filter(Boolean)
        .every((l) => l.startsWith("{")),
    ).toBe(true);
    expect(p.stdout).not.toContain('{"level"');
    expect(p.stdout).not.toContain("\u001b["); // no colour into a pipe

    const bad = await runCli(worker("bad", "--log-format", "xml"), {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('skiff: --log-format must be json or pretty, got "xml"\n');
    expect(() => logFormat(undefined, { SKIFF_LOG_FORMAT: "yaml" })).toThrow(
      /SKIFF_LOG_FORMAT must be json or pretty/,
    );
  });
});

describe("log lines held for the banner", { timeout: 120_000 }, () => {
  it("a worker still waiting for its API shows its retries without waiting for its banner", async () => {
    const api = `http://127.0.0.1:${await freePort()}`;
    const w = startCli(
      ["worker", "--api-url", api, "--token", "skf_x", "--name", "waiting", "--health-port", "0"],
      { SKIFF_LOG_FORMAT: "json" },
    );
    try {
      await w.waitForOutput("API not reachable; retrying", 60_000);
      expect(w.stderr()).not.toContain("skiff worker waiting: agent");
    } finally {
      w.child.kill("SIGKILL");
      await w.done;
    }
  });
});

describe("no key twice on a log line", { timeout: 180_000 }, () => {
  it("skiff up's lines through requests, refusals, an unsandboxed agent and a job", async () => {
    const home = emptyHome();
    const up = startCli(["up", "--no-tui", "--workers", "1", "--port", "0", "--log-format", "json"], {
      SKIFF_HOME: home,
    });
    let unsafe: ReturnType<typeof startCli> | undefined;
    try {
      await up.waitForOutput('"msg":"ready"', 90_000);
      const url = /API listening on (\S+)/.exec(up.stderr())?.[1] ?? "";
      const admin = readFileSync(join(home, "admin.token"), "utf8").trim();
      const call = (path: string, token: string, body?: unknown) =>
        fetch(`${url}${path}`, {
          method: body ? "POST" : "GET",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: body ? JSON.stringify(body) : undefined,
        });
      expect((await call("/v1/jobs", "skf_wrong")).status).toBe(401);
      expect((await call("/v1/nowhere", admin)).status).toBe(404);
      const made = (await (await call("/v1/tokens", admin, { name: "unsafe", role: "agent" })).json()) as {
        token: string;
      };
      // An unsandboxed agent makes the API log the agent's name beside its own.
      unsafe = startCli(
        [
          "worker",
          "--api-url",
          url,
          "--token",
          made.token,
          "--name",
          "vm-w-1",
          "--health-port",
          "0",
          "--unsafe-no-sandbox",
        ],
        {},
      );
      await up.waitForOutput("WITHOUT a sandbox", 60_000);
      const submitted = await call("/v1/jobs", admin, {
        name: "logged",
        steps: [{ name: "a", run: "echo hi" }],
      });
      const job = (await submitted.json()) as { id: string };
      await waitFor(
        "the job to finish",
        async () => {
          const got = (await (await call(`/v1/jobs/${job.id}`, admin)).json()) as { state: string };
          return ["succeeded", "failed"].includes(got.state);
        },
        60_000,
        200,
      );
    } finally {
      unsafe?.child.kill("SIGTERM");
      await unsafe?.done;
      up.child.kill("SIGINT");
    }
    const done = await up.done;
    expect(done.code, done.stderr).toBe(0);
    const lines = done.stdout.split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) expect(duplicateKeys(line), line).toEqual([]);
    const parsed = lines.map((l) => JSON.parse(l));
    expect(parsed.every((l) => l.name === "skiff-up")).toBe(true);
    expect(parsed.find((l) => l.code === "unauthorized")?.reqId).toBeTypeOf("string");
    expect(parsed.find((l) => /WITHOUT a sandbox/.test(l.msg))?.subject).toBe("vm-w-1");
  });

  it("a log call's own `name` (the process scaler's worker) does not repeat the logger's", () => {
    const file = join(emptyHome(), "controller.log");
    const { logger, release } = createLogger("skiff-controller", { format: "json", file });
    logger.info({ name: "vm-w-1", code: 0 }, "worker exited");
    release();
    const [line = ""] = readFileSync(file, "utf8").split("\n");
    expect(duplicateKeys(line)).toEqual([]);
    expect(JSON.parse(line)).toMatchObject({ name: "skiff-controller", subject: "vm-w-1", code: 0 });
    expect(duplicateKeys('{"a":1,"b":{"c":[{"d":1,"d":2}]},"a":"x\\"y"}')).toEqual(["d", "a"]);
  });
});
