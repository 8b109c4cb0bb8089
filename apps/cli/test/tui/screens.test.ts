import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "@skiff/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { keysOf } from "../../src/tui/model/keys.ts";
import { bindingKeys } from "../../src/tui/render/help.ts";
import { startConsole, type TestConsole } from "./console.ts";
import { agent, auditEntry, FakeBackend, fleetView, job, logLines } from "./fixtures.ts";

const ESC = "\x1b";
const ENTER = "\r";
const DANGEROUS_KEYS = ["d", "s", "+", "-", "c", "r", "n", "a"];

function backendWithData(): FakeBackend {
  const b = new FakeBackend();
  b.agents = [
    agent({ id: "agt_1", name: "worker-alpha", activity: "busy", runningJobs: ["job_run"] }),
    agent({ id: "agt_2", name: "worker-beta", labels: { queue: "gpu" } }),
    agent({
      id: "agt_3",
      name: "worker-gamma",
      status: "offline",
      lastHeartbeatAt: new Date(Date.now() - 95_000).toISOString(),
      heartbeatAgeMs: 95_000,
    }),
  ];
  b.jobs = [
    job({ id: "job_run", name: "build-site", agentId: "agt_1" }, "running"),
    job({ id: "job_bad", name: "lint-all" }, "failed"),
    job({ id: "job_q", name: "deploy-docs" }, "queued"),
  ];
  b.fleet = fleetView();
  b.audit = [
    auditEntry(7, "fleet.update", "alice", { mode: "manual", replicas: 3 }),
    auditEntry(6, "job.submit", "bob", { name: "build-site" }),
  ];
  b.logs.set("job_run", logLines(["compiling pages", "compiled 42 pages"]));
  return b;
}

let c: TestConsole | null = null;
afterEach(() => {
  c?.close();
  c = null;
});

describe("the console's views", () => {
  it("Overview shows counts, the fleet and recent events", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.waitForText("2 online (1 busy, 1 idle), 1 offline");
    await c.waitForText("1 queued, 1 running");
    await c.waitForText("fleet 2 of 3 workers");
    await c.waitForText("queue depth");
    b.eventFeeds[0]?.emit(
      "job.state",
      { jobId: "job_q", state: "running", queue: "default", agentId: "agt_2", epoch: 1 },
      1,
    );
    await c.waitForText("job job_q running on worker-beta");
    await c.waitForText("0 queued, 2 running");
    await c.waitForText("● live");
    await c.waitForText("alice (operator)");
  });

  it("Agents lists every agent with status and heartbeat age, and applies heartbeats", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":agents\r");
    const text = await c.waitForText("worker-gamma");
    expect(text).toMatch(/NAME\s+STATUS\s+HEARTBEAT\s+JOBS/);
    expect(text).toMatch(/worker-alpha\s+busy\s+\d+s\s+1\/2/);
    expect(text).toMatch(/worker-beta\s+idle\s+\d+s\s+0\/2 .*queue=gpu/);
    expect(text).toMatch(/worker-gamma\s+offline\s+1m3\ds offline/);
    b.eventFeeds[0]?.emit("agent.status", { agentId: "agt_3", status: "online", activity: "idle" }, 1);
    b.eventFeeds[0]?.emit(
      "agent.heartbeat",
      { agentId: "agt_3", activity: "busy", at: new Date().toISOString(), running: 2 },
      2,
    );
    await c.waitForText(/worker-gamma\s+busy\s+[0-2]s\s+2\/2/);
    await c.press("/gam");
    await c.waitForText("Agents (1/3)");
    expect(c.screen.text()).not.toContain("worker-alpha");
  });

  it("o hides offline agents and shows them again", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":agents\r");
    await c.waitForText("worker-gamma");
    await c.press("o");
    await c.waitForText("Agents (2/3)  filter: status:online");
    expect(c.screen.text()).not.toContain("worker-gamma");
    await c.press("o");
    await c.waitForText(/Agents \(3\)/);
    await c.waitForText("worker-gamma");
  });

  it("leaves out agents offline for long (O lists them), and makes version skew and unsafe agents stand out", async () => {
    const b = backendWithData();
    b.agents.push(
      agent({
        id: "agt_4",
        name: "worker-long-gone",
        status: "offline",
        lastHeartbeatAt: new Date(Date.now() - 3_600_000).toISOString(),
        heartbeatAgeMs: 3_600_000,
      }),
      agent({ id: "agt_5", name: "worker-old", version: "0.0.9" }),
      agent({ id: "agt_6", name: "worker-bare", sandbox: "none", unsafe: true }),
    );
    c = startConsole(b);
    await c.press(":agents\r");
    let text = await c.waitForText("worker-old");
    expect(text).not.toContain("worker-long-gone");
    // Recently offline agents stay: they are what an operator is looking for.
    expect(text).toContain("worker-gamma");
    expect(text).toContain("Agents (5)  1 offline for over 10m hidden (O shows)");
    expect(text).toContain("⚠ 1 UNSAFE: no sandbox");
    expect(text).toContain("versions differ: 0.1.0 (3), 0.0.9 (1)");
    expect(text).toMatch(/worker-old\s+idle.*≠0\.0\.9/);
    expect(text).toMatch(/worker-beta\s+idle.*\s0\.1\.0\s/);
    expect(text).toMatch(/⚠ worker-bare.*UNSAFE/);
    await c.press("O");
    text = await c.waitForText("worker-long-gone");
    expect(text).toContain("Agents (6)");
    expect(text).not.toContain("hidden (O shows)");
    await c.press("O");
    await c.waitForText("Agents (5)  1 offline");
  });

  it("Jobs lists jobs with state labels, and Enter opens the log, which follows new lines", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":jobs\r");
    const text = await c.waitForText("deploy-docs");
    expect(text).toMatch(/job_run\s+build-site\s+▶ running/);
    expect(text).toMatch(/job_bad\s+lint-all\s+✗ failed .* 2$/m);
    expect(text).toMatch(/job_q\s+deploy-docs\s+· queued/);
    await c.press("g");
    await c.press(ENTER);
    await c.waitForText("compiled 42 pages");
    await c.waitForText("── step 1: build ✓ ok exit 0 ──");
    await c.waitForText("following");
    b.logFeeds
      .get("job_run")
      ?.emit(
        "line",
        { seq: 3, step: 1, stream: "stderr", ts: new Date().toISOString(), text: "warning: slow test" },
        3,
      );
    await c.waitForText("err warning: slow test");
    await c.waitForText("── step 2: test ▶ running ──");
    b.logFeeds.get("job_run")?.emit("end", { jobId: "job_run", state: "succeeded", exitCode: 0 });
    await c.waitForText("── job succeeded, exit 0 ──");
    await c.press(ESC);
    await c.waitForText("Jobs (3)");
  });

  it("the log: / marks matches and n/N go between them, & narrows, w wraps, arrows scroll a cut line, t hides times, Ctrl-S saves", async () => {
    const b = backendWithData();
    const long = `start ${"x".repeat(300)} middle ${"y".repeat(300)} end-of-line`;
    b.logs.set(
      "job_run",
      logLines([
        "compiling pages",
        "error: page 3 is broken",
        long,
        "compiled 42 pages",
        "error: page 9 too",
      ]),
    );
    c = startConsole(b, { cols: 120, rows: 30 });
    await c.press(":log job_run\r");
    let text = await c.waitForText("compiled 42 pages");
    // A cut line says so at its end.
    expect(text).toMatch(/start x+…/);
    expect(text).not.toContain("end-of-line");

    // Search: every line kept, the cursor on the first match after it, n and N move between them.
    await c.press("/error\r");
    text = await c.waitForText("search: error (2 lines; n/N)");
    expect(text).toContain("compiling pages");
    const selectedHas = (needle: string) =>
      waitFor(`the selected line to hold "${needle}"`, async () => {
        await c?.screen.flush();
        return c?.screen.selectedLine()?.includes(needle) ?? false;
      });
    await c.press("g");
    await c.press("n");
    await selectedHas("page 3 is broken");
    await c.press("n");
    await selectedHas("page 9 too");
    await c.press("N");
    await selectedHas("page 3 is broken");

    // Filter: only matching lines; Esc clears it.
    await c.press("&42\r");
    text = await c.waitForText("filter: 42");
    expect(text).not.toContain("compiling pages");
    expect(text).toContain("compiled 42 pages");
    await c.press(ESC);
    await c.waitForText("compiling pages");

    // Horizontal scroll, then wrap: the end of the long line comes into view.
    await c.press("0");
    for (let i = 0; i < 40; i++) await c.press("\x1b[C");
    text = await c.waitForText("from column 641");
    expect(text).toMatch(/…y+ end-of-line/);
    await c.press("w");
    text = await c.waitForText("wrapping long lines");
    expect(text).toContain("end-of-line");
    expect(text).toMatch(/↪ x+/);

    // Times.
    expect(text).toMatch(/03:04:0\d compiling pages/);
    await c.press("t");
    text = await c.waitForText("times hidden");
    expect(text).not.toMatch(/03:04:0\d compiling pages/);

    // Save: a path prompt, then the file holds every line with its full time and stream.
    const dir = mkdtempSync(join(tmpdir(), "skiff-save-"));
    const path = join(dir, "run.log");
    await c.press("\x13");
    await c.waitForText("Save the log to: ./job_run.log");
    await c.press("\x15");
    await c.press(`${path}\r`);
    await c.waitForText(`saved 5 lines to ${path}`);
    const saved = readFileSync(path, "utf8").split("\n");
    expect(saved[0]).toBe("== step 1 ==");
    expect(saved[1]).toMatch(/^2026-01-02T03:04:05\.000Z stdout compiling pages$/);
    expect(saved).toContain(`2026-01-02T03:04:07.000Z stdout ${long}`);
    // An existing file is replaced only after a yes.
    await c.press("\x13");
    await c.press("\x15");
    await c.press(`${path}\r`);
    await c.waitForText(`${path} exists. Replace it? [y/N]`);
    await c.press("n");
    await c.waitForText("not saved");
    await c.press("\x13");
    await c.press("\x15");
    await c.press(`${join(dir, "missing", "x.log")}\r`);
    await c.waitForText("its directory does not exist");
    // A directory takes the file under the job's own name; ~ is the operator's home.
    await c.press("\x13");
    await c.press("\x15");
    await c.press(`${dir}\r`);
    await c.waitForText(`saved 5 lines to ${join(dir, "job_run.log")}`);
    const home = process.env.HOME;
    process.env.HOME = dir;
    try {
      await c.press("\x13");
      await c.press("\x15");
      await c.press("~/from-home.log\r");
      await c.waitForText(`saved 5 lines to ${join(dir, "from-home.log")}`);
    } finally {
      process.env.HOME = home;
    }
  });

  it("goes from a job to its detail, its agent and its log, from an agent to its jobs, from an audit entry to its target, and Esc walks back", async () => {
    const b = backendWithData();
    b.jobs.push(
      job({ id: "job_again", name: "build-site", agentId: "agt_2", retryOf: "job_bad" }, "succeeded"),
    );
    b.audit.unshift({ ...auditEntry(8, "job.cancel", "alice"), target: "job_run" });
    c = startConsole(b);
    await c.press(":jobs\r");
    await c.waitForText("deploy-docs");
    await c.press("/name:build state:running\r");
    await c.waitForText("Jobs (1/4)");
    await c.press("i");
    let text = await c.waitForText("Steps (2)");
    expect(text).toMatch(/ Job build-site \(job_run\)/);
    expect(text).toMatch(/State\s+▶ running/);
    expect(text).toMatch(/Attempt\s+1 of 3/);
    expect(text).toMatch(/Agent\s+worker-alpha\s+\(agt_1; A opens it\)/);
    expect(text).toMatch(/Spec\s+timeout 10m00s, memory 512 MiB, cpus 1, pids 256/);
    expect(text).toMatch(/1\s+build\s+✓ ok\s+exit 0\s+took 1ms\s+network off/);
    expect(text).toMatch(/2\s+test\s+▶ running\s+exit -/);

    await c.press("A");
    text = await c.waitForText("filter: id:agt_1");
    expect(text).toContain("worker-alpha");
    expect(text).not.toContain("worker-beta");
    await c.press(ESC);
    await c.waitForText("Steps (2)");
    await c.press("l");
    await c.waitForText("compiled 42 pages");
    await c.press(ESC);
    await c.waitForText("Steps (2)");
    await c.press(ESC);
    await c.waitForText("Jobs (1/4)");

    // An agent's jobs.
    await c.press(":agents\r");
    await c.waitForText("worker-beta");
    await c.press("/beta\r");
    await c.waitForText("Agents (1/");
    await c.press("J");
    text = await c.waitForText("filter: agentid:agt_2");
    expect(text).toContain("job_again");
    expect(text).not.toContain("job_run");
    // A retry leads to the job it retried.
    await c.press("i");
    await c.waitForText(/Attempt\s+1 of 3, a retry of job_bad \(p opens it\)/);
    await c.press("p");
    await c.waitForText(/ Job lint-all \(job_bad\)/);

    // An audit entry's target.
    await c.press(":audit\r");
    await c.waitForText("job.cancel");
    await c.press("t");
    await c.waitForText(/ Job build-site \(job_run\)/);
    await c.press(ESC);
    await c.waitForText("job.cancel");
  });

  it(":job opens a job's detail; a job that does not exist is said once", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":job job_bad\r");
    await c.waitForText(/State\s+✗ failed\s+exit 2/);
    await c.press(":job job_nope\r");
    await c.waitForText("cannot load the job: no job job_nope: check the id (Esc goes back)");
  });

  it("sorts by any column with > and <, reverses with ~, and shows or hides IDs with I", async () => {
    const b = backendWithData();
    c = startConsole(b, { cols: 200, rows: 30 });
    await c.press(":jobs\r");
    await c.waitForText("deploy-docs");
    const order = () =>
      (c?.screen.text() ?? "")
        .split("\n")
        .map((l) => /(build-site|lint-all|deploy-docs)/.exec(l)?.[1])
        .filter((n) => n !== undefined);
    await c.press(">");
    await c.waitForText("sorted by ID (~ reverses)");
    await c.press(">");
    await c.waitForText("NAME↑");
    expect(order()).toEqual(["build-site", "deploy-docs", "lint-all"]);
    await c.press("~");
    await c.waitForText("NAME↓");
    expect(order()).toEqual(["lint-all", "deploy-docs", "build-site"]);
    await c.press(">");
    await c.waitForText("STATE↑");
    expect(order()).toEqual(["deploy-docs", "build-site", "lint-all"]);
    // Column widths fit the terminal: NAME no longer takes whatever is left at 200 columns.
    const header = (c.screen.text().split("\n")[1] ?? "").trimEnd();
    expect(header.indexOf("STATE") - header.indexOf("NAME")).toBeLessThanOrEqual(49);
    await c.press("I");
    let text = await c.waitForText(/^NAME/m);
    expect(text).not.toContain("job_run");
    await c.press(":agents\r");
    text = await c.waitForText("worker-beta");
    expect(text).not.toContain("agt_2");
    await c.press("I");
    text = await c.waitForText("agt_2");
    expect(text).toMatch(/^ID\s+NAME/m);
  });

  it("pages through all the jobs on the server with M, keeping the newest and the older ones", async () => {
    const b = backendWithData();
    const many = Array.from({ length: 1200 }, (_, i) =>
      job({
        id: `job_${String(i).padStart(5, "0")}`,
        name: `bulk-${i}`,
        createdAt: new Date(Date.parse("2026-01-01T00:00:00Z") - i * 1000).toISOString(),
      }),
    );
    b.jobs = [...b.jobs, ...many];
    c = startConsole(b);
    await c.press(":jobs\r");
    let text = await c.waitForText("M loads 500 older");
    expect(text).toContain("Jobs (500)");
    await c.press("M");
    text = await c.waitForText("loaded 500 older jobs");
    expect(text).toContain("Jobs (1000)");
    await c.press("M");
    text = await c.waitForText("loaded 203 older jobs");
    expect(text).toContain("Jobs (1203)");
    expect(text).not.toContain("M loads 500 older");
    await c.press("G");
    await c.waitForText("bulk-1199");
    await c.press("M");
    await c.waitForText("every job is loaded: there are no older ones");
  });

  it("the Jobs title puts what waits on unserved queues before the paging hint, so 80 columns keep it", async () => {
    const b = backendWithData();
    for (let i = 0; i < 600; i++)
      b.jobs.push(
        job({ id: `job_p${String(i).padStart(3, "0")}`, name: `park-${i}`, queue: "gpu" }, "queued"),
      );
    b.agents = b.agents.filter((a) => a.id !== "agt_2"); // nobody serves gpu
    c = startConsole(b, { cols: 80, rows: 24 });
    await c.press(":jobs\r");
    const text = await c.waitForText(
      /Jobs \(\d+\) of 603 on the server {2}⚠ 600 queued on unserved queue gpu/,
    );
    expect(text.split("\n")[0]).toContain("⚠ 600 queued on unserved queue gpu");
  });

  it("with --mouse, a click selects a row and the wheel moves the selection; without, the mouse does nothing", async () => {
    const selectedHas = (needle: string) =>
      waitFor(`the selected row to hold "${needle}"`, async () => {
        await c?.screen.flush();
        return c?.screen.selectedLine()?.includes(needle) ?? false;
      });
    // SGR mouse reports, 1-based: a press and a release is a click; buttons 64 and 65 are the wheel.
    // A terminal sends the press and the release as two reports.
    const click = async (x: number, y: number) => {
      await c?.press(`\x1b[<0;${x};${y}M`);
      await c?.press(`\x1b[<0;${x};${y}m`);
    };
    const wheel = (down: boolean, x: number, y: number) => `\x1b[<${down ? 65 : 64};${x};${y}M`;
    c = startConsole(backendWithData(), { mouse: true });
    await c.press(":agents\r");
    await c.waitForText("worker-gamma");
    await selectedHas("worker-alpha");
    // Row 1 is the title, row 2 the table's header, rows 3.. its rows: row 5 is the third agent.
    await click(10, 5);
    await selectedHas("worker-gamma");
    await c.press(wheel(false, 10, 8));
    await selectedHas("worker-alpha");
    await c.press(wheel(true, 10, 8));
    await selectedHas("worker-gamma");
    c.close();

    c = startConsole(backendWithData());
    await c.press(":agents\r");
    await c.waitForText("worker-gamma");
    await selectedHas("worker-alpha");
    await click(10, 5);
    await new Promise((r) => setTimeout(r, 200));
    await selectedHas("worker-alpha");
  });

  it("hostile names (escape sequences, line breaks, emoji) from submitters and agents are drawn cleaned, never raw", async () => {
    const b = backendWithData();
    b.jobs.push(
      job({ id: "job_evil", name: "esc-\x1b[31mred\x1b[0m first\nsecond\tthird 😀 end" }, "succeeded"),
    );
    b.agents.push(
      agent({
        id: "agt_evil",
        name: "\x1b[31mevil\x1b[0m\x1b]0;PWN\x07 😀名前",
        labels: { zone: "a\x1b[8mhidden" },
      }),
    );
    b.audit.unshift({ ...auditEntry(9, "agent.register", "\x1b[8mghost"), target: "agt_evil\nforged line" });
    c = startConsole(b);
    await c.press(":jobs\r");
    let text = await c.waitForText("job_evil");
    // One row, the id intact, no escape bytes reaching the terminal, the emoji as one replacement character.
    const evilRow = text.split("\n").find((l) => l.includes("job_evil")) ?? "";
    expect(evilRow).toMatch(/^job_evil\s+esc-red first second {4}third (\uFFFD end|…)\s+✓ succeeded/);
    await c.press(":agents\r");
    text = await c.waitForText("名前");
    // The title-setting sequence is removed whole; the colour codes too.
    expect(text).toMatch(/^evil \uFFFD名前\s+idle/m);
    expect(text).not.toContain("PWN");
    expect(text).toContain("zone=ahidden");
    await c.press(":audit\r");
    text = await c.waitForText("ghost");
    expect(text).toMatch(/ghost\s+admin\s+agent\.register\s+agt_evil forged line/);
    // Nothing on screen was coloured by a name: only our own colours (red is the failed job's).
    const rows = text.split("\n").filter((l) => l.includes("ghost"));
    expect(rows).toHaveLength(1);
  });

  it("flags queued jobs on a queue no online agent serves, in Overview and Jobs", async () => {
    const b = backendWithData();
    b.jobs.push(job({ id: "job_gpu", name: "train-model", queue: "gpu" }, "queued"));
    c = startConsole(b);
    await c.waitForText(/Jobs\s+2 queued, 1 running; 1 unserved \(gpu\)/);
    await c.press(":jobs\r");
    const text = await c.waitForText("train-model");
    expect(text).toContain("⚠ 1 queued on unserved queue gpu");
    expect(text).toMatch(/job_gpu\s+train-model\s+· queued\s+⚠ gpu/);
    // The ordinary backlog is not flagged.
    expect(text).toMatch(/job_q\s+deploy-docs\s+· queued\s+default/);
  });

  it("counts every job on the server, not the 500 it loaded: 1,200 queued on an unserved queue", async () => {
    const b = backendWithData();
    for (let i = 0; i < 1200; i++)
      b.jobs.push(
        job({ id: `job_gpu${String(i).padStart(4, "0")}`, name: `train-${i}`, queue: "gpu" }, "queued"),
      );
    const onServer = b.jobs.length;
    c = startConsole(b);
    await c.waitForText(/Jobs\s+1201 queued, 1 running; 1200 unserved \(gpu\)/);
    expect(b.countsAsked).toBeGreaterThan(0);
    await c.press(":jobs\r");
    const text = await c.waitForText("1200 queued on unserved queue gpu");
    // The table holds the page it loaded and says how many more the server has.
    expect(text).toMatch(new RegExp(`Jobs \\(\\d+\\) of ${onServer} on the server`));
    // A job the console never loaded is canceled: the event has it ask the server's counts again.
    expect(text).not.toContain("job_gpu1199");
    const asked = b.countsAsked;
    const far = b.jobs.find((j) => j.id === "job_gpu1199");
    if (!far) throw new Error("no job_gpu1199");
    Object.assign(far, { state: "canceled", epoch: 2 });
    b.eventFeeds[0]?.emit(
      "job.state",
      { jobId: "job_gpu1199", state: "canceled", queue: "gpu", agentId: null, epoch: 2 },
      9,
    );
    await c.waitForText("1199 queued on unserved queue gpu");
    expect(b.countsAsked).toBeGreaterThan(asked);
    // A job it holds moves in the counts at once, before the server is asked again.
    b.eventFeeds[0]?.emit(
      "job.state",
      { jobId: "job_q", state: "running", queue: "default", agentId: "agt_2", epoch: 1 },
      10,
    );
    await c.press(":overview\r");
    await c.waitForText(/Jobs\s+1199 queued, 2 running/);
  });

  it("M while the first list is still loading says so, rather than that every job is loaded", async () => {
    const b = backendWithData();
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const page = b.listJobPage.bind(b);
    b.listJobPage = async (q) => {
      await gate;
      return page(q);
    };
    c = startConsole(b);
    await c.press(":jobs\r");
    await c.waitForText(/ Jobs \(0\)/);
    await c.press("M");
    await c.waitForText("the jobs are still loading; M pages older ones once they are in");
    release();
    await c.waitForText("deploy-docs");
  });

  it("Fleet shows mode, desired against actual, leader and decisions", async () => {
    c = startConsole(backendWithData());
    await c.press(":fleet\r");
    const text = await c.waitForText("manual: 2 replicas");
    expect(text).toContain("manual, 3 replicas");
    expect(text).toContain("desired 3  actual 2  ↑ scaling up");
    expect(text).toContain("skiff-up@host (epoch 4");
    expect(text).toContain("manual: 3 replicas");
  });

  it("an agent started beside the fleet is not counted as the fleet's: converged, not 'scaling down'", async () => {
    const b = backendWithData();
    // Two online agents; the controller runs one worker, which is all it was asked for.
    b.fleet = { ...b.fleet, mode: "manual", replicas: 1, desired: 1, actual: 1, online: 2 };
    c = startConsole(b);
    let text = await c.waitForText(/Fleet\s+desired 1\s+actual 1\s+✓ converged/);
    expect(text).not.toContain("scaling down");
    expect(text).toContain("fleet 1 of 1 workers");
    await c.press(":fleet\r");
    text = await c.waitForText("not the fleet's");
    expect(text).toMatch(/Online agents\s+2 \(1 not the fleet's: started beside it\)/);
    // The controller's next count arrives as an event and is shown as it is.
    b.eventFeeds[0]?.emit("fleet.changed", { actual: 0, leaderEpoch: 4 }, 20);
    await c.waitForText(/desired 1\s+actual 0\s+↑ scaling up/);
  });

  it("Audit says when the log holds more than the newest 1000, and M pages through the rest", async () => {
    const b = backendWithData();
    b.audit = Array.from({ length: 2500 }, (_, i) => auditEntry(i + 1, "job.submit", "olivia", {}));
    c = startConsole(b);
    await c.press(":audit\r");
    let text = await c.waitForText(/Audit \(1000\)\s+older entries on the server: M loads 1000 more/);
    expect(text).toMatch(/^\s*2500\s/m);
    await c.press("M");
    await c.waitForText("loaded 1000 older audit entries");
    await c.press("M");
    text = await c.waitForText(/Audit \(2500\)/);
    expect(text).not.toContain("older entries on the server");
    await c.press("G");
    text = await c.waitForText(/^\s+1\s+\S+ \S+\s+olivia/m);
    await c.press("M");
    await c.waitForText("every audit entry is loaded: there are no older ones");
  });

  it("a filter with a since: that is not a time stays open and says why, instead of matching nothing", async () => {
    c = startConsole(backendWithData());
    await c.press(":audit\r");
    await c.waitForText("fleet.update");
    await c.press("/since:yesterday\r");
    await c.waitForText("since:yesterday is not a time: use a duration back from now");
    await c.press("\x15since:1h\r"); // Ctrl-U clears it
    await c.waitForText("filter: since:1h");
  });

  it("at 60×20: Overview's lines are whole (no gauge beside them) and Jobs leaves out the ID column until I", async () => {
    const b = backendWithData();
    b.jobs.push(job({ id: "job_gpu", name: "train-model", queue: "nobody" }, "queued"));
    c = startConsole(b, { cols: 60, rows: 20 });
    let text = await c.waitForText(/Jobs\s+2 queued, 1 running; 1 unserved \(nobody\)$/m);
    expect(text).toMatch(/^Fleet\s+desired 3\s+actual 2\s+↑ scaling up$/m);
    expect(text).toMatch(/^Success\s+0% succeeded \(0 of 1 recent\)$/m);
    await c.press(":jobs\r");
    text = await c.waitForText(/^NAME\s+STATE\s+QUEUE\s+AGENT/m);
    expect(text).toMatch(/^build-site\s+▶ running\s+default\s+worker-alpha/m);
    expect(text).not.toContain("job_run");
    await c.press("I");
    text = await c.waitForText(/^ID\s+NAME/m);
    expect(text).toMatch(/^job_run\s+build-site/m);
  });

  it("where the locale is not UTF-8, wide names are drawn as that many ? and every column stays in place", async () => {
    const saved = {
      LANG: process.env.LANG,
      LANGUAGE: process.env.LANGUAGE,
      LC_ALL: process.env.LC_ALL,
      LC_CTYPE: process.env.LC_CTYPE,
    };
    Object.assign(process.env, { LANG: "C", LC_ALL: "C" });
    delete process.env.LANGUAGE;
    delete process.env.LC_CTYPE;
    try {
      const b = backendWithData();
      b.jobs.push(
        job({ id: "job_cjk", name: "名前-build" }, "succeeded"),
        job({ id: "job_emoji", name: "ship 🚀 it" }, "succeeded"),
        job({ id: "job_accent", name: "café-deploy" }, "succeeded"),
      );
      c = startConsole(b);
      await c.press(":jobs\r");
      const text = await c.waitForText("????-build");
      expect(text).toContain("ship ? it"); // astral characters are one U+FFFD before this
      expect(text).toContain("caf?-deploy");
      // Every row's state starts in the same column as in the header.
      const lines = text.split("\n");
      const at = (lines.find((l) => l.startsWith("ID")) ?? "").indexOf("STATE");
      expect(at).toBeGreaterThan(0);
      for (const id of ["job_cjk", "job_emoji", "job_accent", "job_run"]) {
        const row = lines.find((l) => l.startsWith(id)) ?? "";
        expect(row.slice(at), id).toMatch(/^[+>.x] \w/);
      }
      expect([...text].filter((ch) => ch.charCodeAt(0) > 0x7e && !"─│┌┐└┘├┤┬┴┼".includes(ch))).toEqual([]);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it("Audit lists entries with their actor, and verifies the chain", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":audit\r");
    const text = await c.waitForText("fleet.update");
    expect(text).toMatch(/7\s+\S+ \S+\s+alice\s+admin\s+fleet\.update\s+fleet\s+ok\s+mode=manual replicas=3/);
    b.eventFeeds[0]?.emit(
      "audit.appended",
      auditEntry(8, "agent.drain", "carol", { reason: "maintenance" }),
      5,
    );
    await c.waitForText(/8\s+\S+ \S+\s+carol\s+admin\s+agent\.drain/);
    await c.press("v");
    await c.waitForText("audit chain intact: 2 entries checked");
    await c.waitForText("✓ chain intact to #8 (checked");
    expect(b.verifications).toBe(1);
    // A newer entry is not vouched for until the view has checked again, which it does by itself.
    b.eventFeeds[0]?.emit("audit.appended", auditEntry(9, "agent.drain", "carol"), 6);
    await c.waitForText(/✓ intact to #8 \(\S+\); 1 newer entry not yet checked/);
    await c.waitForText("✓ chain intact to #9 (checked", 10_000);
    expect(b.verifications).toBe(2);
  });

  it("Audit and Jobs filter by time with since: and until:", async () => {
    const b = backendWithData();
    const now = Date.now();
    b.audit = [
      { ...auditEntry(20, "agent.drain", "old"), at: new Date(now - 3 * 3_600_000).toISOString() },
      { ...auditEntry(21, "agent.drain", "recent"), at: new Date(now - 10 * 60_000).toISOString() },
      { ...auditEntry(22, "agent.drain", "newest"), at: new Date(now - 30_000).toISOString() },
    ];
    c = startConsole(b);
    await c.press(":audit\r");
    await c.waitForText("newest");
    await c.press("/since:1h\r");
    let text = await c.waitForText("(2/3)");
    expect(text).toContain("recent");
    expect(text).not.toMatch(/\bold\b/);
    await c.press("/");
    await c.press("\x15since:1h until:5m\r");
    text = await c.waitForText("(1/3)");
    expect(text).toContain("recent");
    expect(text).not.toContain("newest");
    const twoHoursAgo = new Date(now - 2 * 3_600_000).toISOString().slice(0, 16);
    await c.press("/");
    await c.press(`\x15until:${twoHoursAgo}Z\r`);
    text = await c.waitForText(`filter: until:${twoHoursAgo}Z`);
    expect(text).toContain("(1/3)");
    expect(text).toMatch(/\bold\b/);
  });
});

describe("keys", () => {
  it("the help screen lists exactly the bound keys", async () => {
    c = startConsole(backendWithData(), { rows: 60 });
    await c.waitForText("● live");
    await c.press(":agents\r");
    await c.waitForText("worker-alpha");
    await c.waitForText("d drain the agent");
    await c.press("?");
    const text = await c.waitForText("Commands (type : and a name");
    const helpKeys = text
      .split("Commands (type")[0]
      ?.split("\n")
      .map((l) => /│ {2}(\S.*?) {2,}\S/.exec(l)?.[1])
      .filter((k): k is string => k !== undefined);
    const bound = c.app.keys.bound().flatMap((g) => g.bindings.map(bindingKeys));
    expect(helpKeys?.sort()).toEqual([...bound].sort());
    expect(bound).toContain("d");
    expect(bound).toContain("q Ctrl-C");
    await c.press(ESC);
    await c.waitForText("worker-beta");
  });

  it("the help scrolls with PgDn, Ctrl-F and space instead of closing, and explains the filter", async () => {
    c = startConsole(backendWithData(), { rows: 24, cols: 100 });
    await c.waitForText("● live");
    await c.press("?");
    await c.waitForText("keys (j/k, PgDn/PgUp scroll; Esc closes)");
    for (const key of ["\x1b[6~", "\x06", " ", "\x1b[6~", "\x06"]) {
      await c.press(key);
      await c.waitForText("keys (j/k, PgDn/PgUp scroll; Esc closes)");
    }
    // Paged down to the end: the filter's syntax is there.
    await c.waitForText("field:value matches one column only");
    await c.waitForText("state:running queue:gpu");
    await c.press(ESC);
    await c.waitForText(/^(?![\s\S]*Esc closes)/);
  });

  it("binds no dangerous key with --read-only, and says read-only", async () => {
    const b = backendWithData();
    b.who = { name: "root", role: "admin" };
    c = startConsole(b, { readOnly: true });
    await c.waitForText("root (admin)  read-only");
    for (const view of ["agents", "jobs", "fleet", "audit", "overview"]) {
      await c.press(`:${view}\r`);
      await c.waitForText(new RegExp(` ${view} `, "i"));
      const keys = c.app.keys.keys();
      for (const k of DANGEROUS_KEYS) expect(keys, `${k} in ${view}`).not.toContain(k);
      expect(
        c.app.keys
          .bound()
          .flatMap((g) => g.bindings)
          .some((x) => x.dangerous),
      ).toBe(false);
    }
    await c.press("s");
    await c.press(":scale 5\r");
    await c.waitForText("changes the server, which this session may not");
    expect(b.calls).toEqual([]);
  });

  it("binds no dangerous key for a viewer token", async () => {
    const b = backendWithData();
    b.who = { name: "reader", role: "viewer" };
    c = startConsole(b);
    await c.waitForText("reader (viewer)  read-only");
    await c.press(":agents\r");
    await c.waitForText("worker-alpha");
    expect(c.app.keys.keys().filter((k) => DANGEROUS_KEYS.includes(k))).toEqual([]);
    await c.press(":audit\r");
    await c.waitForText("the audit log needs the operator role");
    // Nothing to open or verify: the keys are not offered, in the footer or the help.
    expect(c.app.keys.keys()).not.toContain("v");
    expect(c.app.keys.keys()).not.toContain("enter");
  });

  it("scales only after confirmation, from `s` and from the palette", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.waitForText("alice (operator)");
    await c.press("s");
    await c.waitForText("Scale to how many workers? 3");
    await c.press("\x7f5\r");
    await c.waitForText("Scale the fleet to 5 workers (now 3)? [y/N]");
    expect(b.calls).toEqual([]);
    await c.press("n");
    await c.waitForText("nothing changed");
    await c.press(":sc");
    await c.press("\t");
    await c.waitForText(":scale ");
    await c.press("4\r");
    await c.waitForText("Scale the fleet to 4 workers");
    await c.press("y");
    await c.waitForText("fleet set to 4 workers");
    expect(b.calls).toEqual([{ method: "setFleet", args: [{ mode: "manual", replicas: 4 }] }]);
  });

  it("asks a reason before cancelling a job", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":jobs\r");
    await c.waitForText("build-site");
    await c.press("g");
    await c.press("c");
    await c.waitForText("Reason to cancel build-site:");
    await c.press(ENTER);
    await c.waitForText("a reason is required");
    await c.press("stuck\r");
    await c.waitForText('Cancel job build-site (job_run), reason "stuck"?');
    await c.press("y");
    await c.waitForText("job job_run is canceling");
    expect(b.calls).toEqual([{ method: "cancelJob", args: ["job_run", "stuck"] }]);
  });

  it("says at once that a finished job cannot be cancelled, a running one not retried, and an empty list has no job", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":jobs\r");
    await c.waitForText("lint-all");
    await c.press("/lint\r");
    await c.press("c");
    await c.waitForText("job lint-all is already failed: nothing to cancel (r retries it)");
    await c.press("\x1b");
    await c.press("/build\r");
    await c.press("r");
    await c.waitForText("job build-site is running: only a finished job can be retried (c cancels it)");
    await c.press("\x1b");
    await c.press("/nothing-matches-this\r");
    await c.press("c");
    await c.waitForText("no job selected: the list is empty or filtered out");
    expect(b.calls).toEqual([]);
  });

  it("refuses :scale beyond what the API allows before asking for confirmation", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.waitForText("Overview");
    await c.press(":scale 99999\r");
    await c.waitForText("cannot scale to 99999: replicas: ");
    expect(c.screen.text()).not.toContain("Scale the fleet to 99999");
    expect(b.calls).toEqual([]);
  });

  it("a log of a job that does not exist says so once and stops following", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.press(":log job_doesnotexist\r");
    await c.waitForText("no job job_doesnotexist: check the id (Esc goes back)");
    expect(b.logFeeds.get("job_doesnotexist")?.closed).toBe(true);
  });

  it("submits a job from a file after checking and confirming it, then opens its log", async () => {
    const b = backendWithData();
    b.jobs.push(job({ id: "job_new", name: "from-file" }, "queued"));
    const dir = mkdtempSync(join(tmpdir(), "skiff-tui-submit-"));
    writeFileSync(join(dir, "bad.yaml"), "name: x\nsteps: []\n");
    writeFileSync(join(dir, "job.yaml"), "name: from-file\nsteps:\n  - { name: hi, run: echo hi }\n");
    c = startConsole(b);
    await c.press(":jobs\r");
    await c.waitForText("deploy-docs");
    await c.press("n");
    await c.waitForText("Job file (YAML or JSON):");
    await c.press(`${join(dir, "bad")}\t`);
    await c.waitForText(`Job file (YAML or JSON): ${join(dir, "bad.yaml")}`);
    await c.press(ENTER);
    await c.waitForText("a job needs at least one step");
    expect(b.calls).toEqual([]);
    await c.press("n");
    await c.press(`${join(dir, "job.yaml")}\r`);
    await c.waitForText(`Submit job from-file from ${join(dir, "job.yaml")}? [y/N]`);
    await c.press("y");
    await c.waitForText("submitted job job_new");
    await c.waitForText(/Job log job_new/);
    expect(b.calls).toEqual([
      { method: "submitJob", args: [{ name: "from-file", steps: [{ name: "hi", run: "echo hi" }] }] },
    ]);
  });
});

describe("terminal manners", () => {
  it("draws no colour with --no-color, yet says every status in words", async () => {
    c = startConsole(backendWithData(), { color: false });
    await c.press(":agents\r");
    const text = await c.waitForText("worker-gamma");
    expect(text).toMatch(/1m3\ds offline/);
    expect(c.screen.anyColour()).toBe(false);
    await c.press(":overview\r");
    await c.waitForText(/fleet 2 of 3 workers[^\n]*\n[^\n]*█+░+ 67%/);
    expect(c.screen.anyColour()).toBe(false);
  });

  it("lays itself out again when the terminal is resized", async () => {
    c = startConsole(backendWithData());
    await c.press(":agents\r");
    await c.waitForText("worker-alpha");
    c.screen.resize(90, 20);
    await c.waitForText(/^ skiff ● live {2}alice \(operator\) +http:\/\/fake\.test:8787 $/m);
    const lines = c.screen.lines();
    expect(lines[19]).toMatch(/^ skiff ● live/);
    expect(lines[19]?.length).toBe(90);
    expect(lines.find((l) => l.includes("worker-alpha"))?.length).toBeLessThanOrEqual(90);
  });

  it("Overview lays out again across 80 columns: the gauge goes when narrowed and comes back when widened", async () => {
    c = startConsole(backendWithData(), { cols: 100, rows: 30 });
    let text = await c.waitForText("fleet 2 of 3 workers");
    c.screen.resize(60, 20);
    text = await c.waitForText(/^Fleet\s+desired 3\s+actual 2\s+↑ scaling up\s*$/m);
    expect(text).not.toContain("fleet 2 of 3");
    expect(text).toMatch(/^Success\s+0% succeeded \(0 of 1 recent\)\s*$/m);
    c.screen.resize(100, 30);
    await c.waitForText("fleet 2 of 3 workers");
  });

  it("shows the connection state: reconnecting with a countdown, then live", async () => {
    const b = backendWithData();
    c = startConsole(b);
    await c.waitForText("● live");
    b.eventFeeds[0]?.state({
      kind: "reconnecting",
      retryAt: Date.now() + 4_000,
      reason: "connection refused",
    });
    await c.waitForText(/◌ reconnecting in [34]s/);
    await c.waitForText(/◌ reconnecting in [123]s/);
    b.eventFeeds[0]?.state({ kind: "live" });
    await c.waitForText("● live");
    b.eventFeeds[0]?.state({ kind: "unauthorised", retryAt: Date.now() + 4_000, reason: "HTTP 401" });
    await c.waitForText("✗ unauthorised");
  });

  it("under skiff up, q asks first (quitting stops the node); n keeps it, y quits", async () => {
    c = startConsole(backendWithData(), {
      confirmQuit: "Quit and stop skiff up (its workers drain and exit)?",
    });
    await c.waitForText("● live");
    await c.press("q");
    await c.waitForText("Quit and stop skiff up (its workers drain and exit)?");
    await c.press("n");
    await c.waitForText("still running");
    let done = false;
    void c.app.done.then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false);
    await c.press("q");
    await c.waitForText("Quit and stop skiff up");
    await c.press("y");
    await c.app.done;
  });

  it("quits on q and puts the terminal back", async () => {
    c = startConsole(backendWithData());
    await c.waitForText("● live");
    await c.press("q");
    await c.app.done;
    await c.screen.flush();
    // Left the alternate screen and showed the cursor again.
    expect(c.screen.written).toContain("\x1b[?1049l");
    expect(c.screen.written).toContain("\x1b[?25h");
  });
});

it("keysOf lists a binding's key and its aliases", () => {
  expect(keysOf({ key: "j", aliases: ["down"], description: "down", handler: () => {} })).toEqual([
    "j",
    "down",
  ]);
});
