import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describeWith, waitFor } from "@skiff/testkit";
import { afterAll, expect, it } from "vitest";
import { emptyHome, freePort } from "../cli.ts";
import { TmuxSession, tmuxGate } from "./tmux.ts";

const root = new URL("../../../../", import.meta.url).pathname;

describeWith(tmuxGate(), "skiff up with its console attached (tmux)", () => {
  const home = emptyHome();
  let tmux: TmuxSession | null = null;
  let firstJob = "";

  /** `skiff up` with its console attached, in a tmux pane of its own, once its worker is online. */
  async function attachedUp(port: number): Promise<TmuxSession> {
    tmux?.kill();
    const t = new TmuxSession(
      `node --import tsx apps/cli/src/main.ts up --port ${port} --workers 1; echo "up exited $?"; sleep 600`,
      { cwd: root, cols: 160, rows: 45, env: { SKIFF_HOME: home, TERM: "xterm-256color", LANG: "C.UTF-8" } },
    );
    tmux = t;
    await t.waitFor("● live", 90_000);
    await t.waitFor(/Agents\s+1 online/, 60_000);
    return t;
  }

  afterAll(() => {
    tmux?.kill();
    rmSync(home, { recursive: true, force: true });
  });

  /**
   * A step that is still running when the node is told to stop, and ends well inside the embedded
   * workers' drain budget (10 s). The stop comes only once the step has printed its first line: a
   * job is `running` from its claim on, while the sandbox may still be starting, and on a loaded
   * machine that start-up ate the budget (the job failed so once, in a full run on a busy machine).
   */
  const STEP = "echo started; sleep 2; echo done";
  async function stepStarted(url: string, headers: Record<string, string>, id: string): Promise<void> {
    await waitFor(
      "the step to start",
      async () => {
        const res = await fetch(`${url}/v1/jobs/${id}/logs?limit=100`, { headers });
        const body = (await res.json()) as { lines?: { text: string }[] };
        return (body.lines ?? []).some((l) => l.text === "started");
      },
      60_000,
      100,
    );
  }

  it("q offers detaching; D closes the console and the node keeps serving until Ctrl-C, which stops it", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const t = await attachedUp(port);
    t.type("q");
    await t.waitFor("Quit and stop skiff up (its workers drain and exit)? (D detaches instead)");
    t.type("n");
    await t.waitFor("still running");

    t.type("D");
    const pane = await t.waitFor("console detached; still serving", 30_000);
    expect(pane).toContain(`attach again: skiff tui --api-url ${url}`);
    expect(t.format("#{alternate_on}")).toBe("0");
    // Still serving, with its worker: detaching stopped nothing.
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(pane).not.toContain("up exited");

    // Ctrl-C in that terminal drains: a running job finishes rather than dying of the same SIGINT
    // (the steps run in a process group of their own, outside the terminal's).
    const token = readFileSync(join(home, "admin.token"), "utf8").trim();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const created = (await (
      await fetch(`${url}/v1/jobs`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          name: "through-ctrl-c",
          steps: [{ name: "wait", run: STEP }],
        }),
      })
    ).json()) as { id: string };
    await stepStarted(url, headers, created.id);
    t.keys("C-c");
    await t.waitFor(/up exited 0/, 60_000);
    firstJob = created.id;
    await waitFor(
      "the port to close",
      async () => {
        try {
          await fetch(`${url}/readyz`);
          return false;
        } catch {
          return true;
        }
      },
      10_000,
      100,
    );
  }, 240_000);

  it("q then y lets a running job finish before the node stops (the console does not cut the drain short)", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const t = await attachedUp(port);
    const token = readFileSync(join(home, "admin.token"), "utf8").trim();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, { method, headers, body: body ? JSON.stringify(body) : null });
      return (await res.json()) as { id: string; state: string };
    };
    const job = await api("POST", "/v1/jobs", { name: "slow", steps: [{ name: "wait", run: STEP }] });
    await stepStarted(url, headers, job.id);

    t.type("q");
    await t.waitFor("(D detaches instead)");
    t.type("y");
    await t.waitFor(/up exited 0/, 60_000);

    // Start the node again on the same data and read how the job ended.
    t.kill();
    tmux = new TmuxSession(
      `node --import tsx apps/cli/src/main.ts up --no-tui --port ${port} --workers 0; sleep 600`,
      { cwd: root, env: { SKIFF_HOME: home } },
    );
    await waitFor(
      "the node to come back",
      async () => (await fetch(`${url}/readyz`).catch(() => null))?.ok ?? false,
      60_000,
      200,
    );
    const after = await api("GET", `/v1/jobs/${job.id}`);
    expect(after.state).toBe("succeeded");
    // And the job that was running when Ctrl-C reached the detached node.
    expect((await api("GET", `/v1/jobs/${firstJob}`)).state).toBe("succeeded");
    tmux.keys("C-c");
  }, 240_000);
});
