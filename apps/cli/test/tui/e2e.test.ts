import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describeWith, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type CliProc, emptyHome, freePort, killLeftovers, startCli } from "../cli.ts";
import { TmuxSession, tmuxGate } from "./tmux.ts";

const root = new URL("../../../../", import.meta.url).pathname;
const HEARTBEAT_MS = "2000";

describeWith(tmuxGate(), "skiff tui in tmux against a real `skiff up`", () => {
  let home: string;
  let port: number;
  let url: string;
  let token: string;
  let up: CliProc | null = null;
  let tmux: TmuxSession | null = null;
  let tickerJob = "";

  const env = () => ({
    SKIFF_HOME: home,
    SKIFF_LOG_LEVEL: "warn",
    SKIFF_HEARTBEAT_INTERVAL_MS: HEARTBEAT_MS,
  });

  async function startUp(): Promise<CliProc> {
    const proc = startCli(["up", "--no-tui", "--port", String(port)], env());
    await proc.waitForOutput(/admin token\s+\S+/, 60_000);
    await waitFor("the API to be ready", async () => (await fetch(`${url}/readyz`)).ok, 60_000, 100);
    return proc;
  }

  async function api(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
    return data;
  }

  /** Opens a view through the palette and waits for its title. */
  async function open(view: string, title: RegExp): Promise<string> {
    const t = tmux;
    if (!t) throw new Error("no console");
    t.type(`:${view}`);
    await t.waitFor(`:${view}`);
    t.keys("Enter");
    return t.waitFor(title);
  }

  beforeAll(async () => {
    home = emptyHome();
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    up = await startUp();
    const where = /admin token\s+(\S+)/.exec(up.stderr())?.[1] ?? "";
    token = readFileSync(where.startsWith("/") ? where : join(root, where), "utf8").trim();
    await waitFor(
      "two embedded agents",
      async () => (await api("GET", "/v1/agents")).items.length === 2,
      60_000,
      200,
    );
    tmux = new TmuxSession(
      `node --import tsx apps/cli/src/main.ts tui --base-url ${url}; echo "tui exited $?"; sleep 600`,
      { cwd: root, env: { ...env(), TERM: "xterm-256color", LANG: "C.UTF-8" } },
    );
    await tmux.waitFor("● live", 30_000);
  }, 120_000);

  afterAll(async () => {
    tmux?.kill();
    if (up) {
      up.child.kill("SIGTERM");
      await Promise.race([up.done, new Promise((r) => setTimeout(r, 15_000))]);
      up.child.kill("SIGKILL");
      await up.done;
    }
    expect(killLeftovers(), "skiff processes left running").toBe(0);
    if (home) rmSync(home, { recursive: true, force: true });
  }, 30_000);

  it("Agents shows every agent with a heartbeat age that updates", async () => {
    const t = tmux as TmuxSession;
    const names: string[] = (await api("GET", "/v1/agents")).items.map((a: { name: string }) => a.name);
    const screen = await open("agents", /Agents \(2\)/);
    for (const name of names) expect(screen).toMatch(new RegExp(`${name}\\s+(idle|busy)\\s+\\d+s`));
    const first = names[0] ?? "";
    const ageOf = (text: string) => new RegExp(`${first}\\s+\\S+\\s+(\\d+s)`).exec(text)?.[1];
    const before = ageOf(screen);
    expect(before).toBeDefined();
    // The age ticks on screen by itself (no request per second), and drops back at each heartbeat.
    await t.waitFor((text) => ageOf(text) !== undefined && ageOf(text) !== before);
  });

  it("opening a running job shows new log lines as they are written", async () => {
    const t = tmux as TmuxSession;
    const job = await api("POST", "/v1/jobs", {
      name: "e2e-ticker",
      steps: [{ name: "tick", run: "for i in $(seq 1 400); do echo tick-$i; sleep 0.2; done" }],
    });
    tickerJob = job.id;
    await waitFor(
      "the job to run",
      async () => (await api("GET", `/v1/jobs/${job.id}`)).state === "running",
      60_000,
      200,
    );
    await open("jobs", new RegExp(`${job.id}\\s+e2e-ticker\\s+▶ running`));
    t.keys("g");
    t.keys("Enter");
    const first = await t.waitFor(/tick-(\d+)/);
    await t.waitFor("── step 1: tick");
    const seen = Math.max(...[...first.matchAll(/tick-(\d+)/g)].map((m) => Number(m[1])));
    await t.waitFor(new RegExp(`tick-(${seen + 3}|${seen + 4}|${seen + 5})\\b`));
    await t.waitFor("following");
    await api("POST", `/v1/jobs/${job.id}/cancel`, { reason: "e2e done" });
    await t.waitFor(/── job canceled/);
    t.keys("Escape");
    await t.waitFor(/Jobs \(\d+\)/);
  });

  it("`s` to 3 with confirmation makes three agents appear", async () => {
    const t = tmux as TmuxSession;
    await open("agents", /Agents \(2\)/);
    t.type("s");
    await t.waitFor("Scale to how many workers? 2");
    t.keys("C-u");
    t.type("3");
    t.keys("Enter");
    await t.waitFor("Scale the fleet to 3 workers (now 2)? [y/N]");
    t.type("y");
    await t.waitFor("fleet set to 3 workers");
    const screen = await t.waitFor(/Agents \(3\)/, 60_000);
    expect(screen.match(/embedded-\d+\s+(idle|busy)/g)?.length).toBe(3);
  });

  it("the Audit view then shows the scale entry with the operator's name", async () => {
    const t = tmux as TmuxSession;
    const who = await api("GET", "/v1/whoami");
    await open("audit", /Audit \(\d+\)/);
    await t.waitFor(new RegExp(`${who.name}\\s+admin\\s+fleet\\.update\\s+fleet\\s+ok\\s+(after|before)=`));
    t.type("/fleet.update");
    await t.waitFor(/Audit \(1\/\d+\)\s+filter: fleet\.update/);
    t.keys("Enter");
    t.keys("Enter");
    const detail = await t.waitFor(`by ${who.name} (admin)`);
    expect(detail).toMatch(/after: \{"mode":"manual","replicas":3\}/);
    t.keys("Escape");
    await t.waitFor((text) => !text.includes(`by ${who.name} (admin)`));
    t.keys("Escape");
    await t.waitFor((text) => !text.includes("filter: fleet.update"));
  });

  it("rides out an API restart: reconnecting, then live data again", async () => {
    const t = tmux as TmuxSession;
    await open("jobs", /Jobs \(\d+\)/);
    const old = up;
    old?.child.kill("SIGTERM");
    await old?.done;
    await t.waitFor(/reconnecting in \d+s|reconnecting…/);
    up = await startUp();
    await t.waitFor("● live", 30_000);
    const job = await api("POST", "/v1/jobs", {
      name: "after-restart",
      steps: [{ name: "hi", run: "echo hi" }],
    });
    await t.waitFor(new RegExp(`${job.id}\\s+after-restart`), 30_000);
    await t.waitFor(new RegExp(`${job.id}\\s+after-restart\\s+✓ succeeded`), 60_000);
    expect(tickerJob).not.toBe("");
  });

  it("quits on q and gives the terminal back", async () => {
    const t = tmux as TmuxSession;
    expect(t.format("#{alternate_on}")).toBe("1");
    t.type("q");
    const screen = await t.waitFor("tui exited 0");
    expect(screen).not.toContain("● live");
    expect(t.format("#{alternate_on} #{cursor_flag}")).toBe("0 1");
  });

  /** Starts a console in a fresh pane, ends it with `end`, and checks the terminal is itself again. */
  async function endsCleanly(command: string, end: (t: TmuxSession) => void, exit: RegExp): Promise<string> {
    const t = new TmuxSession(`${command}; echo "tui exited $?"; sleep 600`, {
      cwd: root,
      env: { ...env(), TERM: "xterm-256color", LANG: "C.UTF-8" },
    });
    try {
      await t.waitFor("● live", 30_000);
      expect(t.format("#{alternate_on}")).toBe("1");
      end(t);
      const screen = await t.waitFor(exit);
      expect(t.format("#{alternate_on} #{cursor_flag}")).toBe("0 1");
      return screen;
    } finally {
      t.kill();
    }
  }

  const tui = () => `node --import tsx apps/cli/src/main.ts tui --base-url ${url}`;

  it("gives the terminal back on Ctrl-C and on SIGTERM", async () => {
    await endsCleanly(tui(), (t) => t.keys("C-c"), /tui exited 0/);
    await endsCleanly(
      tui(),
      (t) => {
        for (const pid of t.children()) process.kill(pid, "SIGTERM");
      },
      /tui exited 0/,
    );
  });

  it("gives the terminal back on a crash, then prints what happened", async () => {
    const screen = await endsCleanly(
      `node --import tsx apps/cli/test/tui/crash-child.ts ${url}`,
      () => {},
      /tui exited 1/,
    );
    expect(screen).toContain("skiff tui crashed; the terminal was restored.");
    expect(screen).toContain("deliberate crash for the test");
  });
});
