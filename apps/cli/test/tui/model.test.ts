import type { Job } from "@skiff/protocol";
import { waitFor } from "@skiff/testkit";
import { describe, expect, it } from "vitest";
import { completeCommand, runCommand } from "../../src/tui/commands.ts";
import { AgentStore } from "../../src/tui/model/agents.ts";
import { Cursor } from "../../src/tui/model/cursor.ts";
import { applyFilter, filterProblem, isTimeRelative, parseTimeBound } from "../../src/tui/model/filter.ts";
import { AuditStore, FleetStore } from "../../src/tui/model/fleet.ts";
import { JobLogStore } from "../../src/tui/model/joblog.ts";
import { JobStore } from "../../src/tui/model/jobs.ts";
import { KeyMap } from "../../src/tui/model/keys.ts";
import { MetricsStore } from "../../src/tui/model/metrics.ts";
import { Prompt } from "../../src/tui/model/prompt.ts";
import { SessionStore } from "../../src/tui/model/session.ts";
import { type Stores, Sync } from "../../src/tui/model/sync.ts";
import { agent, auditEntry, FakeBackend, job, logLines } from "./fixtures.ts";

function stores(): Stores {
  return {
    session: new SessionStore("http://x", false),
    agents: new AgentStore(),
    jobs: new JobStore(),
    fleet: new FleetStore(),
    audit: new AuditStore(),
    metrics: new MetricsStore(),
  };
}

describe("Sync", () => {
  it("reloads the lists only when the stream cannot resume (first connect, or a restarted server)", async () => {
    const b = new FakeBackend();
    b.agents = [agent({ id: "a1", name: "one" })];
    let loads = 0;
    const list = b.listAgents.bind(b);
    b.listAgents = async () => {
      loads++;
      return list();
    };
    const s = stores();
    const sync = new Sync(b, s);
    sync.start();
    await waitFor("the first load", () => loads === 1 && s.agents.size === 1);
    const feed = b.eventFeeds[0];
    feed?.emit("ready", { lastEventId: 40 });
    await waitFor("the reload on the first ready", () => loads === 2);
    feed?.emit(
      "agent.heartbeat",
      { agentId: "a1", activity: "busy", at: new Date().toISOString(), running: 1 },
      41,
    );
    // Resumed: the server knows where we were (41), so nothing is fetched again.
    feed?.emit("ready", { lastEventId: 41 });
    // A restarted server numbers its events from the start again: everything is loaded afresh.
    b.agents.push(agent({ id: "a2", name: "two" }));
    feed?.emit("ready", { lastEventId: 3 });
    await waitFor("the reload after a restart", () => loads === 3 && s.agents.size === 2);
    sync.stop();
  });

  it("fetches an agent it hears of but does not know, and counts queue depth", async () => {
    const b = new FakeBackend();
    const s = stores();
    const sync = new Sync(b, s);
    sync.start();
    await waitFor("the first load", () => s.session.who !== null);
    b.agents = [agent({ id: "late", name: "latecomer" })];
    b.jobs = [job({ id: "j1", name: "one" }, "queued")];
    b.eventFeeds[0]?.emit(
      "agent.heartbeat",
      { agentId: "late", activity: "idle", at: new Date().toISOString(), running: 0 },
      1,
    );
    b.eventFeeds[0]?.emit("job.created", { jobId: "j1", name: "one", queue: "default" }, 2);
    await waitFor("the agent and the job", () => s.agents.has("late") && s.jobs.has("j1"));
    expect(s.jobs.countOf("queued")).toBe(1);
    // The depth is the server's count, asked again shortly after job events.
    await waitFor("the depth from the server's counts", () => s.metrics.series().queueDepth.at(-1) === 1);
    b.eventFeeds[0]?.emit(
      "job.state",
      { jobId: "j1", state: "succeeded", queue: "default", agentId: "late", epoch: 1 },
      3,
    );
    expect(s.jobs.countOf("queued")).toBe(0);
    expect(s.metrics.series().succeeded).toBe(1);
    expect(s.metrics.events()[0]?.text).toBe("job j1 succeeded on latecomer");
    sync.stop();
  });
});

describe("Sync of job state events", () => {
  it("takes the attempt, attempts allowed and exit code from the event itself, without fetching the job again", async () => {
    const b = new FakeBackend();
    b.jobs = [job({ id: "j2", name: "two", attempt: 1, maxAttempts: 3, exitCode: null }, "running")];
    const s = stores();
    const sync = new Sync(b, s);
    sync.start();
    await waitFor("the first load", () => s.jobs.has("j2"));
    let fetched = 0;
    const getJob = b.getJob.bind(b);
    b.getJob = async (id: string) => {
      fetched++;
      return getJob(id);
    };
    b.eventFeeds[0]?.emit(
      "job.state",
      {
        jobId: "j2",
        state: "queued",
        queue: "default",
        agentId: null,
        epoch: 2,
        attempt: 2,
        maxAttempts: 3,
        exitCode: null,
        reason: "agent lost; requeued",
      },
      1,
    );
    expect(s.jobs.get("j2")).toMatchObject({ state: "queued", attempt: 2, maxAttempts: 3 });
    b.eventFeeds[0]?.emit(
      "job.state",
      {
        jobId: "j2",
        state: "failed",
        queue: "default",
        agentId: "a",
        epoch: 3,
        attempt: 3,
        maxAttempts: 3,
        exitCode: 7,
      },
      2,
    );
    expect(s.jobs.get("j2")).toMatchObject({ state: "failed", attempt: 3, exitCode: 7 });
    expect(fetched).toBe(0);
    sync.stop();
  });
});

describe("Overview on attach", () => {
  it("starts with the API's recent history in its charts and the latest audited changes in its feed", async () => {
    const b = new FakeBackend();
    const s = stores();
    const now = Date.now();
    const bucket = (ago: number) => new Date(Math.floor(now / 5_000) * 5_000 - ago * 5_000).toISOString();
    b.history = [
      { at: bucket(2), finished: 4, succeeded: 3, queued: 7 },
      { at: bucket(1), finished: 2, succeeded: 2, queued: 5 },
      { at: bucket(0), finished: 0, succeeded: 0, queued: 5 },
    ];
    b.audit = [auditEntry(12, "fleet.scale", "ctl"), auditEntry(11, "job.submit", "ann")];
    const sync = new Sync(b, s);
    sync.start();
    await waitFor("the history", () => s.metrics.series().finished === 6);
    const series = s.metrics.series();
    expect(series.succeeded).toBe(5);
    // Per minute: 4 in a 5 s bucket is 48/min.
    expect(series.throughput.slice(-3)).toEqual([48, 24, 0]);
    expect(series.queueDepth.slice(-3, -1)).toEqual([7, 5]);
    expect(s.metrics.events().map((e) => e.text)).toEqual([
      "audit #12 fleet.scale fleet by ctl: ok",
      "audit #11 job.submit tgt_11 by ann: ok",
    ]);
    sync.stop();
  });
});

describe("Sync of a burst", () => {
  it("shows every job of a burst of 300 it heard of, not the first 50, and retries one that failed to load", async () => {
    const b = new FakeBackend();
    const s = stores();
    const sync = new Sync(b, s);
    sync.start();
    await waitFor("the first load", () => s.session.who !== null);
    b.jobs = Array.from({ length: 300 }, (_, i) => job({ id: `burst-${i}`, name: `b${i}` }, "queued"));
    // One job cannot be read at first (a blip), and can on the next try.
    const getJob = b.getJob.bind(b);
    let failures = 0;
    b.getJob = async (id: string) => {
      if (id === "burst-7" && failures++ === 0) throw new Error("connection reset");
      return getJob(id);
    };
    for (const [i, j] of b.jobs.entries())
      b.eventFeeds[0]?.emit("job.created", { jobId: j.id, name: j.name, queue: "default" }, i + 1);
    await waitFor("all 300 jobs", () => s.jobs.countOf("queued") === 300, 10_000);
    expect(failures).toBe(2);
    await waitFor("the depth from the server's counts", () => s.metrics.series().queueDepth.at(-1) === 300);
    sync.stop();
  });
});

describe("JobStore", () => {
  const ev = (state: Job["state"], epoch: number) => ({
    jobId: "job_a",
    state,
    queue: "default",
    agentId: "agt_1",
    epoch,
    attempt: epoch,
    maxAttempts: 3,
    exitCode: null,
  });

  it("never turns a job back: a late event after a newer fetch, and a stale fetch after a newer event, are ignored", () => {
    const store = new JobStore();
    store.load([job({ id: "job_a", name: "a", epoch: 2, attempt: 2 }, "succeeded")]);
    // The 'running' of the same epoch, delivered after a fetch that already saw the job finish.
    expect(store.state(ev("running", 2))).toBe(true);
    expect(store.get("job_a")?.state).toBe("succeeded");
    // A fetch answered before the requeue that an event has since shown.
    store.state(ev("queued", 3));
    store.upsert(job({ id: "job_a", name: "a", epoch: 2, attempt: 2 }, "running"));
    expect(store.get("job_a")).toMatchObject({ state: "queued", epoch: 3 });
    expect(store.countOf("queued")).toBe(1);
    expect(store.countOf("running")).toBe(0);
    // Forward moves still apply, within an epoch and across one.
    store.state(ev("assigned", 4));
    store.state(ev("running", 4));
    expect(store.get("job_a")).toMatchObject({ state: "running", epoch: 4 });
    store.upsert(job({ id: "job_a", name: "a", epoch: 4, attempt: 4, exitCode: 1 }, "failed"));
    expect(store.get("job_a")).toMatchObject({ state: "failed", exitCode: 1 });
  });

  it("takes a job's start and finish from its events, not from when they arrived (a lagging stream)", () => {
    const store = new JobStore();
    store.load([job({ id: "job_a", name: "a", epoch: 1, attempt: 1 }, "assigned")]);
    const late = Date.parse("2026-01-01T12:10:00.000Z"); // delivered ten minutes after the fact
    store.state({ ...ev("running", 1), startedAt: "2026-01-01T12:00:00.000Z", finishedAt: null }, late);
    store.state(
      {
        ...ev("succeeded", 1),
        startedAt: "2026-01-01T12:00:00.000Z",
        finishedAt: "2026-01-01T12:00:04.980Z",
      },
      late + 1000,
    );
    expect(store.get("job_a")).toMatchObject({
      startedAt: "2026-01-01T12:00:00.000Z",
      finishedAt: "2026-01-01T12:00:04.980Z",
    });
    // An older API's events carry neither: those are stamped on arrival, as before.
    store.load([job({ id: "job_b", name: "b", epoch: 1, attempt: 1, startedAt: null }, "assigned")]);
    store.state({ ...ev("running", 1), jobId: "job_b" }, late);
    expect(store.get("job_b")?.startedAt).toBe(new Date(late).toISOString());
  });

  it("moves a held job in the server's counts at once, and takes the server's counts when they come", () => {
    const store = new JobStore();
    store.load([job({ id: "job_a", name: "a", epoch: 1, attempt: 1, queue: "gpu" }, "queued")]);
    store.setTotals({ states: { queued: 900, running: 3 }, queued: { gpu: 700, default: 200 } });
    expect(store.total("queued")).toBe(900);
    expect(store.unserved(new Set(["default"]))).toEqual(new Map([["gpu", 700]]));
    store.state({ ...ev("assigned", 2), queue: "gpu" });
    expect([store.total("queued"), store.total("assigned")]).toEqual([899, 1]);
    expect(store.unserved(new Set(["default"]))).toEqual(new Map([["gpu", 699]]));
    store.setTotals({ states: { queued: 950 }, queued: { gpu: 750, default: 200 } });
    expect(store.total("queued")).toBe(950);
    expect(store.serverTotal()).toBe(950);
  });
});

describe("AgentStore", () => {
  it("takes each heartbeat's CPU and memory, so they do not stay at their first-load values", () => {
    const store = new AgentStore();
    store.load([agent({ id: "a1", name: "one" })]);
    const fresh = { memoryUsedMb: 3000, memoryTotalMb: 8192, load1: 1.75 };
    expect(
      store.heartbeat({
        agentId: "a1",
        activity: "busy",
        at: new Date().toISOString(),
        running: 1,
        resources: fresh,
      }),
    ).toBe(true);
    expect(store.get("a1")?.resources).toEqual(fresh);
    // A heartbeat from an older API, without resources, keeps what the store has.
    store.heartbeat({ agentId: "a1", activity: "idle", at: new Date().toISOString(), running: 0 });
    expect(store.get("a1")?.resources).toEqual(fresh);
  });
});

describe("key table", () => {
  const noop = () => {};
  it("leaves dangerous keys unbound when changes are not allowed, and lets a view's key win", () => {
    let allow = false;
    const keys = new KeyMap(() => allow);
    const groups = [
      {
        title: "view",
        bindings: [
          { key: "d", description: "drain", dangerous: true, handler: noop },
          { key: "/", description: "search", handler: noop },
        ],
      },
      {
        title: "global",
        bindings: [
          { key: "/", aliases: ["C-s"], description: "filter", handler: noop },
          { key: "q", description: "quit", handler: noop },
        ],
      },
    ];
    keys.set(groups);
    expect(keys.keys().sort()).toEqual(["/", "C-s", "q"]);
    expect(keys.dispatch("d")).toBe(false);
    expect(keys.bound().flatMap((g) => g.bindings.map((b) => b.description))).toEqual([
      "search",
      "filter",
      "quit",
    ]);
    allow = true;
    keys.set(groups);
    expect(keys.keys()).toContain("d");
  });
});

describe("prompt", () => {
  it("a y/N question answers a key that is neither with which keys are, and takes no typed text", () => {
    let answered = "";
    const p = new Prompt({
      kind: "confirm",
      question: "Cancel job_1?",
      onYes: () => {
        answered = "yes";
      },
      onNo: () => {
        answered = "no";
      },
    });
    expect(p.key("x", "x")).toBe("open");
    expect(p.error).toBe("y to go ahead; n, Enter or Esc to leave it");
    expect(p.value).toBe("");
    expect(answered).toBe("");
    expect(p.key("y", "y")).toBe("done");
    expect(answered).toBe("yes");
  });

  it("a third answer the question offers (D detaches instead) works in the prompt itself", () => {
    const answered: string[] = [];
    const spec = {
      kind: "confirm" as const,
      question: "Quit and stop skiff up? (D detaches instead)",
      onYes: () => answered.push("yes"),
      onNo: () => answered.push("no"),
      other: { key: "D", run: () => answered.push("detach"), says: "to detach" },
    };
    const p = new Prompt(spec);
    expect(p.key("x", "x")).toBe("open");
    expect(p.error).toBe("y to go ahead; D to detach; n, Enter or Esc to leave it");
    expect(p.key("D", "D")).toBe("done");
    expect(answered).toEqual(["detach"]);
    // Only its own key: a lower-case d is no answer.
    expect(new Prompt(spec).key("d", "d")).toBe("open");
  });

  it("a since: or until: that is not a time is named before the filter is taken", () => {
    expect(filterProblem("actor:alice since:1h", true)).toBeNull();
    expect(filterProblem("until:2026-12-01T09:30", true)).toBeNull();
    expect(filterProblem("since:yesterday", true)).toMatch(/^since:yesterday is not a time: use a duration/);
    expect(filterProblem("since:1h", false)).toBe("since: does not apply here: these rows have no time");
    expect(filterProblem("sincere text", true)).toBeNull();
    // Dates that do not exist (Date.parse would roll them into the next month) and absurd windows.
    expect(filterProblem("since:2026-02-30", true)).toMatch(/is not a time/);
    expect(filterProblem("until:2026-12-01T24:10", true)).toMatch(/is not a time/);
    expect(filterProblem("since:99999999999999d", true)).toMatch(/is not a time/);
    expect(filterProblem("since:2028-02-29", true)).toBeNull();
  });

  it("edits, completes with Tab, validates and submits", () => {
    let submitted = "";
    const p = new Prompt({
      kind: "input",
      label: ":",
      complete: (v) => ["agents", "audit", "autoscale "].filter((c) => c.startsWith(v)),
      validate: (v) => (v === "a" ? "too short" : null),
      onSubmit: (v) => {
        submitted = v;
      },
    });
    p.key("a", "a");
    expect(p.key("enter", "\r")).toBe("open");
    expect(p.error).toBe("too short");
    p.key("u", "u");
    p.key("tab", "\t");
    expect(p.value).toBe("au");
    p.key("t", "t");
    p.key("tab", "\t");
    expect(p.value).toBe("autoscale ");
    p.key("C-w", undefined);
    expect(p.value).toBe("");
    p.key("a", "a");
    p.key("g", "g");
    p.key("tab", "\t");
    expect(p.value).toBe("agents");
    p.key("backspace", "\x7f");
    expect(p.key("enter", "\r")).toBe("done");
    expect(submitted).toBe("agent");
  });

  it("confirms only on y", () => {
    let yes = 0;
    const p = new Prompt({ kind: "confirm", question: "?", onYes: () => yes++ });
    expect(p.key("x", "x")).toBe("open");
    expect(p.key("enter", "\r")).toBe("done");
    expect(yes).toBe(0);
    expect(new Prompt({ kind: "confirm", question: "?", onYes: () => yes++ }).key("y", "y")).toBe("done");
    expect(yes).toBe(1);
  });
});

describe("palette", () => {
  const host = (canChange: boolean) => {
    const said: string[] = [];
    const ran: string[] = [];
    return {
      said,
      ran,
      show: (v: string) => ran.push(`show ${v}`),
      openJob: (id: string) => ran.push(`log ${id}`),
      openJobDetail: (id: string) => ran.push(`job ${id}`),
      scaleTo: (n: number) => ran.push(`scale ${n}`),
      autoscale: (a: number, b: number, w: number) => ran.push(`auto ${a} ${b} ${w}`),
      verify: () => ran.push("verify"),
      submit: (f: string) => ran.push(`submit ${f}`),
      help: () => ran.push("help"),
      quit: () => ran.push("quit"),
      canChange: () => canChange,
      jobIds: () => ["job_abc", "job_abd", "job_x"],
      say: (t: string) => said.push(t),
    };
  };

  it("completes commands, and job ids after :log", () => {
    expect(completeCommand(host(true), "a")).toEqual(["agents", "audit", "autoscale "]);
    expect(completeCommand(host(false), "a")).toEqual(["agents", "audit"]);
    expect(completeCommand(host(false), "log job_ab")).toEqual(["log job_abc", "log job_abd"]);
    expect(completeCommand(host(false), "job job_x")).toEqual(["job job_x"]);
  });

  it("runs commands and explains the ones it cannot", () => {
    const h = host(true);
    runCommand(h, "scale 5");
    runCommand(h, "ag");
    runCommand(h, "autoscale 1 4");
    runCommand(h, "scale five");
    runCommand(h, "frobnicate");
    expect(h.ran).toEqual(["scale 5", "show agents", "auto 1 4 0"]);
    expect(h.said[0]).toContain("usage: :scale <n>");
    expect(h.said[1]).toContain('no command "frobnicate"');
    const ro = host(false);
    runCommand(ro, "scale 5");
    expect(ro.ran).toEqual([]);
    expect(ro.said[0]).toContain("changes the server");
  });
});

describe("cursor and filter", () => {
  it("follows the end of a growing list until moved up", () => {
    const c = new Cursor(true);
    c.clamp(100, 10);
    expect([c.index, c.offset]).toEqual([99, 90]);
    c.move(-5, 100);
    expect(c.follow).toBe(false);
    c.clamp(120, 10);
    expect(c.index).toBe(94);
    c.bottom(120, true);
    c.clamp(130, 10);
    expect([c.index, c.offset]).toEqual([129, 120]);
  });

  it("matches field:value terms and bare words", () => {
    const rows = [
      { state: "running", name: "build" },
      { state: "failed", name: "running-man" },
    ];
    const fields = (r: (typeof rows)[0]) => r;
    expect(applyFilter(rows, "state:running", fields)).toEqual([rows[0]]);
    expect(applyFilter(rows, "running", fields)).toEqual(rows);
    expect(applyFilter(rows, "RUNNING man", fields)).toEqual([rows[1]]);
    expect(applyFilter(rows, "", fields)).toBe(rows);
  });

  it("bounds rows by time with since: and until:, a duration back from now or a date", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    expect(parseTimeBound("90s", now)).toBe(now - 90_000);
    expect(parseTimeBound("15m", now)).toBe(now - 900_000);
    expect(parseTimeBound("1h", now)).toBe(now - 3_600_000);
    expect(parseTimeBound("2d", now)).toBe(now - 2 * 86_400_000);
    expect(parseTimeBound("1w", now)).toBe(now - 7 * 86_400_000);
    expect(parseTimeBound("2026-12-01T09:30Z", now)).toBe(Date.parse("2026-12-01T09:30:00Z"));
    expect(parseTimeBound("2026-12-01t09:30z", now)).toBe(Date.parse("2026-12-01T09:30:00Z"));
    expect(parseTimeBound("2026-12-01", now)).toBe(new Date(2026, 11, 1).getTime());
    for (const bad of ["1y", "h", "yesterday", "2026-13-45", "-1h"])
      expect(parseTimeBound(bad, now)).toBeNull();

    const rows = [
      { name: "old", at: now - 3 * 3_600_000 },
      { name: "recent", at: now - 10 * 60_000 },
      { name: "newest", at: now - 30_000 },
    ];
    const opts = { time: (r: (typeof rows)[0]) => r.at, now };
    const names = (q: string) => applyFilter(rows, q, (r) => ({ name: r.name }), opts).map((r) => r.name);
    expect(names("since:1h")).toEqual(["recent", "newest"]);
    expect(names("since:1h until:5m")).toEqual(["recent"]);
    expect(names("until:2026-12-01T10:00Z")).toEqual(["old"]);
    expect(names("since:1h new")).toEqual(["newest"]);
    // Not a time: an ordinary field term (no field named since, so it matches the text anywhere).
    expect(names("since:yesterday")).toEqual([]);
    // A view without times treats since: as text.
    expect(applyFilter(rows, "since:1h", (r) => ({ name: r.name }))).toEqual([]);
    expect(isTimeRelative("actor:bob since:1h")).toBe(true);
    expect(isTimeRelative("since:2026-12-01")).toBe(false);
  });
});

describe("a job's log across attempts", () => {
  it("draws a rule where attempt 2 begins, and the first attempt's step markers carry their attempt", () => {
    const b = new FakeBackend();
    b.logs.set("jr", [
      ...logLines(["a1 step0"], 0, 1),
      ...logLines(["a1 step1 cut short"], 1, 2),
      {
        seq: 1_000_000_000,
        step: null,
        stream: "system",
        ts: new Date().toISOString(),
        text: "--- attempt 1 of 2 interrupted: its worker went silent for over 30 s (w1); attempt 2 queued",
      },
      ...logLines(["a2 step0"], 0, 1_000_000_001),
    ]);
    const log = new JobLogStore(b, "jr");
    log.start();
    expect(
      log.entries.map((e) =>
        e.kind === "line"
          ? e.line.text
          : `${e.kind}:${e.kind === "step" ? `${e.step}@${e.attempt}` : e.attempt}`,
      ),
    ).toEqual([
      "step:0@1",
      "a1 step0",
      "step:1@1",
      "a1 step1 cut short",
      // The API's line closes attempt 1; the rule comes only with attempt 2's first line.
      "--- attempt 1 of 2 interrupted: its worker went silent for over 30 s (w1); attempt 2 queued",
      "attempt:2",
      "step:0@2",
      "a2 step0",
    ]);
    log.stop();
  });
});
