import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { describeWith, waitFor } from "@skiff/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProc, emptyHome, freePort, killLeftovers, runCli, startCli } from "../cli.ts";
import { type TerminalCase, TmuxSession, terminalLabel, tmuxGate } from "./tmux.ts";

const root = new URL("../../../../", import.meta.url).pathname;

type Case = TerminalCase;

const SIZES = [
  { cols: 80, rows: 24 },
  { cols: 160, rows: 45 },
];
const CASES: Case[] = [
  ...["xterm-256color", "tmux-256color", "screen-256color"].flatMap((term) =>
    ["C.UTF-8", "C"].flatMap((lang) => SIZES.map((size) => ({ term, lang, ...size }))),
  ),
  { term: "xterm", lang: "C.UTF-8", cols: 80, rows: 24 },
  { term: "vt100", lang: "C.UTF-8", cols: 80, rows: 24 },
];

const ESC = "\x1b";
/** The SGR parameter lists in a pane captured with its escape sequences. */
function sgrs(styled: string): string[][] {
  return [...styled.matchAll(new RegExp(`${ESC}\\[([0-9;]*)m`, "g"))].map((m) => (m[1] ?? "").split(";"));
}

/** The foreground colours set in the captured pane, as `30`..`37`, `90`..`97` or `38;5;N`. */
function foregrounds(styled: string): string[] {
  const out: string[] = [];
  for (const params of sgrs(styled)) {
    for (let i = 0; i < params.length; i++) {
      const p = params[i] ?? "";
      if (p === "38" && params[i + 1] === "5") {
        out.push(`38;5;${params[i + 2]}`);
        i += 2;
      } else if (/^(3[0-7]|9[0-7])$/.test(p)) out.push(p);
    }
  }
  return out;
}

/** Jobs parked on a queue no worker serves: more than the console's first page of 500. */
const PARKED = 600;

const label = terminalLabel;

describeWith(
  tmuxGate(),
  "skiff tui on the terminals operators have (tmux, against a real `skiff up`)",
  () => {
    let home: string;
    let url: string;
    let up: CliProc | null = null;
    const sessions: TmuxSession[] = [];
    const screens = new Map<
      string,
      {
        text: string;
        styled: string;
        overview: { text: string; styled: string };
        detail: string;
        log: string;
        sorted: string;
        audit: string;
        paged: string;
        /** The job the mouse clicked on (the second row), and its Job view. */
        clicked: { name: string; detail: string };
        agentJump: string;
        /** The log after n (next match), and after → (scrolled right). */
        nextMatch: string;
        scrolled: string;
        /** Jobs filtered to the jumped-to agent (J), and the job an audit entry's `t` opened. */
        agentJobs: string;
        auditTarget: string;
        savedLog: string;
        verified: string;
        /** Agents with the unsafe, older agent and the offline one; then with `o` (online only). */
        agents: { text: string; styled: string; online: string };
      }
    >();
    let heartbeat: NodeJS.Timeout | undefined;

    beforeAll(async () => {
      home = emptyHome();
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      const env = { SKIFF_HOME: home, SKIFF_LOG_LEVEL: "warn" };
      up = startCli(["up", "--no-tui", "--port", String(port)], env);
      await up.waitForOutput(/admin token\s+\S+/, 60_000);
      await waitFor("the API to be ready", async () => (await fetch(`${url}/readyz`)).ok, 60_000, 100);
      // More jobs than the console loads at once, on a queue no worker serves: Overview and Jobs flag
      // them, and M pages in the older ones.
      const admin = readFileSync(join(home, "admin.token"), "utf8").trim();
      for (let i = 0; i < PARKED; i++) {
        const res = await fetch(`${url}/v1/jobs`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify({
            name: `park-${String(i).padStart(3, "0")}`,
            queue: "gpu",
            steps: [{ name: "park", run: "true" }],
          }),
        });
        expect(res.status).toBe(201);
      }
      // A finished job, so Overview's event list has grey timestamps and a ✓ to draw.
      const submitted = await runCli(
        ["jobs", "submit", "--api-url", url, "-f", "-", "--follow"],
        env,
        "name: terminal-check\nsteps:\n  - { name: hi, run: echo hi }\n",
        60_000,
      );
      expect(submitted.code, submitted.stderr).toBe(0);

      // Beside the node's two workers: an older one that runs steps with no sandbox, kept online by
      // its heartbeats, and one that has gone offline (it deregistered).
      const agentToken = (
        (await (
          await fetch(`${url}/v1/tokens`, {
            method: "POST",
            headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
            body: JSON.stringify({ name: "terminal-agents", role: "agent" }),
          })
        ).json()) as { token: string }
      ).token;
      const agentCall = async (path: string, body: unknown, token = agentToken) => {
        const res = await fetch(`${url}/v1/agent/${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(300);
        return (await res.json()) as { agentId: string; agentToken?: string };
      };
      const register = (name: string, sandbox: "none" | "bwrap") =>
        agentCall("register", { name, version: "0.0.9", slots: 1, labels: { queue: "nightly" }, sandbox });
      const older = await register("old-unsafe", "none");
      heartbeat = setInterval(() => {
        void agentCall("heartbeat", { agentId: older.agentId, status: "idle" }, older.agentToken).catch(
          () => {},
        );
      }, 3_000);
      const gone = await register("gone-worker", "bwrap");
      await agentCall("deregister", { agentId: gone.agentId }, gone.agentToken);

      // Every terminal at once (four at a time), each in its own tmux server.
      const pending = [...CASES];
      const open = async () => {
        for (let c = pending.shift(); c; c = pending.shift()) {
          const t = new TmuxSession(
            `env TERM=${c.term} LANG=${c.lang} LC_ALL=${c.lang} node --import tsx apps/cli/src/main.ts tui --mouse --base-url ${url}; sleep 600`,
            { cwd: root, cols: c.cols, rows: c.rows, env },
          );
          sessions.push(t);
          await t.waitFor(c.lang === "C" ? "* live" : "● live", 60_000);
          await t.waitFor(/Success\s+100% succeeded/, 30_000);
          // The server's counts and the fleet come in their own answers, a moment after the lists.
          await t.waitFor(new RegExp(`${PARKED} queued[\\s\\S]*Fleet\\s+desired`), 30_000);
          const overview = { text: t.capture(), styled: t.captureStyled() };
          t.type(":jobs");
          await t.waitFor(":jobs");
          t.keys("Enter");
          const text = await t.waitFor("terminal-check", 30_000);
          const styled = t.captureStyled();
          // The same console's other screens on this terminal: the job in full, then its log searched.
          t.type("i");
          const detail = await t.waitFor(/Steps \(1\)/, 30_000);
          // A jumps to the job's agent (Agents, filtered to it); Esc walks back to the job.
          t.type("A");
          const agentJump = await t.waitFor(/filter: id:agt_/, 30_000);
          // J goes on to that agent's jobs; Esc walks back to the agent, then to the job.
          t.type("J");
          const agentJobs = await t.waitFor(/filter: agentid:agt_[\s\S]*terminal-check/, 30_000);
          t.keys("Escape");
          await t.waitFor(/filter: id:agt_/, 30_000);
          t.keys("Escape");
          await t.waitFor(/Steps \(1\)/, 30_000);
          t.type("l");
          await t.waitFor(/step 1: hi/, 30_000);
          t.type("/");
          t.type("hi");
          t.keys("Enter");
          const log = await t.waitFor(/search: hi \(\d+ lines?; n\/N\)/, 30_000);
          // n moves to the next match (and stops following); → scrolls long lines, 0 comes back.
          t.type("n");
          const nextMatch = await t.waitFor(/paused/, 30_000);
          t.keys("Right");
          const scrolled = await t.waitFor(/from column \d+/, 30_000);
          t.type("0");
          await t.waitFor((pane) => !/from column \d+/.test(pane), 30_000);
          // The log's other tools: wrap, times, and Ctrl-S to a file.
          // (What is waited for is the state the screen keeps, not the message that says so: a message
          // lasts seconds, which a loaded machine's polling can miss.)
          t.type("w");
          // Wrapped: the sandbox line (longer than any of these terminals) goes on in a row marked ↪.
          await t.waitFor(/^[│|][↪>]/m, 30_000);
          t.type("t");
          await t.waitFor(/^[│|]sys --- step/m, 30_000);
          const savePath = join(home, `log-${c.term}-${c.lang}-${c.cols}.log`);
          t.keys("C-s");
          await t.waitFor("Save the log to:", 30_000);
          t.keys("C-u");
          t.type(savePath);
          t.keys("Enter");
          await waitFor(
            "the log in its file",
            () => existsSync(savePath) && statSync(savePath).size > 0,
            30_000,
            250,
          ).catch((err) => {
            throw new Error(`${(err as Error).message}\n--- pane ---\n${t.capture()}`);
          });
          const savedLog = readFileSync(savePath, "utf8");
          // Back to Jobs (Esc twice), sorted by name; then Audit filtered by time.
          t.keys("Escape");
          await t.waitFor(/Steps \(1\)/, 30_000);
          t.keys("Escape");
          await t.waitFor(/ Jobs \(\d+\)/, 30_000);
          // `>` moves the sort one column right: as many times as it takes to reach NAME (the ID
          // column comes first only on a terminal wide enough to show it).
          let sorted = "";
          let on: string | null = null;
          for (let i = 0; i < 4 && on !== "NAME"; i++) {
            const before = on;
            t.type(">");
            sorted = await t.waitFor((pane) => {
              on = /\b(ID|NAME|STATE|QUEUE)[↑^]/.exec(pane)?.[1] ?? null;
              return on !== null && on !== before;
            }, 30_000);
          }
          t.type(":audit");
          await t.waitFor(":audit");
          t.keys("Enter");
          await t.waitFor("job.submit", 30_000);
          t.type("/since:1h action:job");
          t.keys("Enter");
          const audit = await t.waitFor("filter: since:1h action:job", 30_000);
          // t goes to the selected entry's target (a job here); Esc comes back to the same filter.
          t.type("t");
          const auditTarget = await t.waitFor(/Steps \(1\)/, 30_000);
          t.keys("Escape");
          await t.waitFor("filter: since:1h action:job", 30_000);
          // Esc clears the filter; v verifies the chain and the title says how far.
          t.keys("Escape");
          await t.waitFor((pane) => !pane.includes("filter: since:1h"), 30_000);
          t.type("v");
          const verified = await t.waitFor(/chain intact to #\d+/, 60_000);
          // Back to Jobs (still sorted by name): M pages in the older jobs.
          t.type(":jobs");
          await t.waitFor(":jobs");
          t.keys("Enter");
          const unpaged = await t.waitFor(/NAME\S/, 30_000);
          if (!unpaged.includes(`of ${PARKED + 1} on the server`))
            throw new Error(`Jobs held every job before M:\n${unpaged}`);
          // From the top, as a fresh Jobs view is (J above left the selection on terminal-check, at
          // the end of the name order).
          t.type("g");
          t.type("M");
          // Every job is held once M has paged in the older ones (the title then has no "of …").
          const paged = await t.waitFor(new RegExp(`Jobs \\(${PARKED + 1}\\)  `), 30_000);
          // A click on the table's second row (row 1 is the title, 2 the header) selects it.
          const second = (paged.split("\n")[3] ?? "").match(/park-\d{3}|terminal-check/)?.[0];
          if (!second) throw new Error(`no job on the second row:\n${paged}`);
          // A terminal sends the press and the release as two reports, a moment apart.
          t.type(`${ESC}[<0;5;4M`);
          await new Promise((r) => setTimeout(r, 100));
          t.type(`${ESC}[<0;5;4m`);
          t.type("i");
          const clickedDetail = await t.waitFor(new RegExp(`Job ${second}|${second} \\(job_`), 30_000);
          // Agents: the unsafe and the older worker stand out; `o` keeps the online ones only.
          t.type(":agents");
          await t.waitFor(":agents");
          t.keys("Enter");
          const agentsText = await t.waitFor(
            /old-unsafe[\s\S]*gone-worker|gone-worker[\s\S]*old-unsafe/,
            30_000,
          );
          const agents = { text: agentsText, styled: t.captureStyled(), online: "" };
          t.type("o");
          agents.online = await t.waitFor(
            (pane) => pane.includes("filter: status:online") && !pane.includes("gone-worker"),
            30_000,
          );
          screens.set(label(c), {
            text,
            styled,
            overview,
            detail,
            log,
            sorted,
            audit,
            paged,
            clicked: { name: second, detail: clickedDetail },
            agentJump,
            agentJobs,
            auditTarget,
            nextMatch,
            scrolled,
            savedLog,
            verified,
            agents,
          });
        }
      };
      await Promise.all([open(), open(), open(), open()]);
    }, 480_000);

    afterAll(async () => {
      clearInterval(heartbeat);
      for (const t of sessions) t.kill();
      if (up) {
        up.child.kill("SIGTERM");
        await Promise.race([up.done, new Promise((r) => setTimeout(r, 15_000))]);
        up.child.kill("SIGKILL");
        await up.done;
      }
      expect(killLeftovers(), "skiff processes left running").toBe(0);
      if (home) rmSync(home, { recursive: true, force: true });
    }, 30_000);

    const screen = (c: Case) => {
      const s = screens.get(label(c));
      if (!s) throw new Error(`no screen for ${label(c)}`);
      return s;
    };

    /** Both screens the console was seen on: Overview (borders, charts, events) and Jobs (states). */
    const both = (c: Case) => {
      const s = screen(c);
      return {
        text: `${s.overview.text}\n${s.text}`,
        styled: `${s.overview.styled}\n${s.styled}`,
        jobs: s.text,
      };
    };

    describe.each(CASES.filter((c) => c.term.endsWith("256color")))("%#: 256 colours", (c) => {
      it(`${label(c)}: grey is drawn as grey (colour 8), never as black`, () => {
        const fg = foregrounds(both(c).styled);
        expect(fg.filter((f) => f === "90" || f === "38;5;8").length, "grey text").toBeGreaterThan(0);
        expect(
          fg.filter((f) => f === "30" || f === "38;5;0"),
          "black text",
        ).toEqual([]);
        expect(fg, "green (a succeeded job)").toContain("32");
      });
    });

    describe.each(CASES.filter((c) => c.lang === "C"))("%#: LANG=C", (c) => {
      it(`${label(c)}: borders, charts and symbols are ASCII, never VT100 line-drawing letters or ?`, () => {
        const { text, styled, jobs } = both(c);
        expect(text).toMatch(/\+- fleet/);
        expect(text).toMatch(/\| {2}\.{20,}/);
        // A border drawn in the VT100 set shows as runs of q between l/m and k/j (random ids in the
        // event list may hold a short "lqq" of their own).
        expect(text).not.toMatch(/^\s*[lm]q{4,}|q{4,}[kj]\s*$/m);
        expect(jobs).toMatch(/\+ succeeded/);
        expect(
          [...text].filter((ch) => ch.charCodeAt(0) > 0x7e),
          "non-ASCII characters",
        ).toEqual([]);
        // No switch into the VT100 line-drawing set either.
        expect(styled.includes(`${ESC}(0`)).toBe(false);
      });
    });

    describe.each(CASES.filter((c) => c.lang !== "C"))("%#: UTF-8", (c) => {
      it(`${label(c)}: borders are box-drawing characters and the states keep their symbols`, () => {
        const { text, jobs } = both(c);
        expect(text).toMatch(/┌─ fleet/);
        expect(jobs).toMatch(/✓ succeeded/);
      });
    });

    describe.each(CASES)("%#: Overview", (c) => {
      it(`${label(c)}: Overview's summary is whole beside the gauge`, () => {
        const { text } = screen(c).overview;
        expect(text).toMatch(/Agents\s+3 online \(3 idle\)/);
        // Counted on the server, not in the 500 rows loaded; flagged as waiting for no one.
        // The queue's name when there is room for it (Jobs names it at any width).
        expect(text).toMatch(
          new RegExp(
            `Jobs\\s+${PARKED} queued, 0 running; ${PARKED} unserved${c.cols > 80 ? " \\(gpu\\)" : ""}\\s`,
          ),
        );
        expect(text).toMatch(/Success\s+100% succeeded \(1 of 1 recent\)/);
      });
    });

    describe.each(CASES)("%#: Job and Job log", (c) => {
      it(`${label(c)}: the Job view shows the job whole; the log's search, n and → work`, () => {
        const { detail, log, nextMatch, scrolled } = screen(c);
        expect(nextMatch).toMatch(/paused/);
        // The sandbox line is longer than any of these terminals: → shows it from a later column.
        expect(scrolled).toMatch(/from column 17\b/);
        expect(detail).toMatch(/State\s+\S succeeded\s+exit 0/);
        expect(detail).toMatch(/Agent\s+vm-embedded-\d/);
        expect(detail).toMatch(/1\s+hi\s+\S ok\s+exit 0/);
        // Esc-able and keyed: the footer offers the neighbours at either size.
        expect(detail).toMatch(/l open the job's log/);
        expect(log).toMatch(/hi/);
        if (c.lang === "C")
          for (const shown of [detail, log])
            expect(
              [...shown].filter((ch) => ch.charCodeAt(0) > 0x7e),
              "non-ASCII characters",
            ).toEqual([]);
      });
    });

    describe.each(CASES)("%#: paging, unserved queues and the mouse", (c) => {
      it(`${label(c)}: Jobs flags the unserved queue and M pages in older jobs; a click selects a row`, () => {
        const { sorted, paged, clicked } = screen(c);
        expect(sorted).toMatch(new RegExp(`Jobs \\(\\d+\\) of ${PARKED + 1} on the server`));
        expect(paged).toMatch(new RegExp(`Jobs \\(${PARKED + 1}\\)  `));
        expect(paged).not.toContain("M loads 500 older");
        expect(clicked.detail).toContain(clicked.name);
        // Jobs names the unserved queue at any width.
        expect(paged).toMatch(new RegExp(`[⚠!] ${PARKED} queued on unserved queue gpu`));
      });
    });

    describe.each(CASES)("%#: jumps, log tools and the audit check", (c) => {
      it(`${label(c)}: A goes to the job's agent and J to its jobs, t from audit to a job, Ctrl-S saves the log, v verifies the audit chain`, () => {
        const { agentJump, agentJobs, auditTarget, savedLog, verified } = screen(c);
        expect(agentJump).toMatch(/Agents \(1\/4\)/);
        expect(agentJump).toMatch(/vm-embedded-\d/);
        // Job → agent → the agent's jobs, and audit entry → its job.
        expect(agentJobs).toMatch(/Jobs \(1[)/]/);
        expect(agentJobs).toContain("terminal-check");
        expect(auditTarget).toMatch(/Job \S+|\(job_/);
        expect(savedLog).toMatch(/^\S+Z stdout hi$/m);
        expect(verified).toMatch(/chain intact to #\d+/);
      });
    });

    describe.each(CASES)("%#: sorting and Audit's time filter", (c) => {
      it(`${label(c)}: Jobs sorts by name with its arrow in the header; Audit keeps only the last hour's job entries`, () => {
        const { sorted, audit } = screen(c);
        expect(sorted).toMatch(c.lang === "C" ? /NAME\^/ : /NAME↑/);
        expect(audit).toMatch(/job\.submit/);
        expect(audit).not.toMatch(/agent\.register/);
      });
    });

    describe.each(CASES)("%#: Agents", (c) => {
      it(`${label(c)}: an unsafe worker and an older version stand out; o hides the offline agent`, () => {
        const { text, styled, online } = screen(c).agents;
        const ascii = c.lang === "C";
        expect(text).toMatch(ascii ? /! 1 UNSAFE: no sandbox/ : /⚠ 1 UNSAFE: no sandbox/);
        expect(text).toMatch(/versions differ: \S+ \(\d\), 0\.0\.9 \(\d\)|versions differ: 0\.0\.9/);
        expect(text).toMatch(ascii ? /! old-unsafe/ : /⚠ old-unsafe/);
        expect(text).toMatch(/UNSAFE/);
        // The older version is marked in its row where the VERSION column fits (the title says it at
        // any width); the offline agent's is not marked: it runs nothing.
        if (c.cols > 80) expect(text).toMatch(ascii ? /!0\.0\.9/ : /≠0\.0\.9/);
        expect(text).toMatch(/gone-worker\s+\S* ?offline/);
        if (c.term.endsWith("256color")) {
          const fg = foregrounds(styled);
          expect(fg, "red (UNSAFE)").toContain("31");
          expect(fg, "yellow (versions differ)").toContain("33");
        }
        expect(online).toContain("old-unsafe");
        expect(online).not.toContain("gone-worker");
      });
    });

    it("TERM=xterm (8 colours): grey is the terminal's own colour, never black or a bright colour", () => {
      const fg = foregrounds(both(CASES.find((c) => c.term === "xterm") as Case).styled);
      expect(fg).toContain("32");
      expect(fg.filter((f) => f === "30" || /^9[0-7]$/.test(f) || f.startsWith("38;5;"))).toEqual([]);
    });

    it("TERM=vt100 (no colours): no colour codes at all, the live marker and states still in words", () => {
      const { text, styled } = both(CASES.find((c) => c.term === "vt100") as Case);
      expect(foregrounds(styled)).toEqual([]);
      expect(text).toContain("● live");
      expect(text).toMatch(/✓ succeeded/);
    });
  },
);
