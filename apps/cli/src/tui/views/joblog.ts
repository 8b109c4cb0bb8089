import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { Cursor } from "../model/cursor.ts";
import { memo } from "../model/emitter.ts";
import { JobLogStore, type LogEntry } from "../model/joblog.ts";
import type { KeyBinding } from "../model/keys.ts";
import {
  attemptMarker,
  endMarker,
  jobHeader,
  logLineText,
  logLineView,
  stepMarker,
  stepsLine,
} from "../render/joblog.ts";
import { clipLine, highlight, wrapLine } from "../render/lines.ts";
import { connectionCell } from "../render/status.ts";
import type { Line } from "../render/style.ts";
import { TableWidget, TextWidget } from "../widgets/table.ts";
import { jobActionKeys } from "./actions.ts";
import { listKeys } from "./listkeys.ts";
import { completePath, fileTarget } from "./paths.ts";
import { Ticker, type View, type ViewContext } from "./view.ts";

function matches(e: LogEntry, query: string): boolean {
  return e.kind !== "line" || e.line.text.toLowerCase().includes(query);
}

function hits(e: LogEntry, search: string): boolean {
  return e.kind === "line" && e.line.text.toLowerCase().includes(search);
}

/** Columns the arrows move a long line by. */
const HSTEP = 16;

/**
 * One job's log, followed live (new lines keep the last one in view until you scroll up; `G` or `f`
 * follows again), with a rule where each step starts and the steps' states and exit codes on top.
 * Like less and k9s: `/` searches (matches marked, `n`/`N` go to the next and previous), `&` narrows
 * the log to matching lines, `w` wraps long lines (else `←`/`→` scroll them, `…` marks a cut), `t`
 * hides or shows the times, Ctrl-S saves the log to a file.
 */
export class JobLogView implements View {
  readonly name = "log";
  private readonly log: JobLogStore;
  private readonly cursor = new Cursor(true);
  private query = "";
  private search = "";
  private wrap = false;
  private timestamps = true;
  private hscroll = 0;
  private header: TextWidget | null = null;
  private body: TableWidget | null = null;
  private unsubscribe: (() => void)[] = [];
  private readonly ticker: Ticker;
  private readonly shown = memo((_v: number, _n: number, query: string) =>
    query ? this.log.entries.filter((e) => matches(e, query)) : this.log.entries,
  );
  /** With wrap on: each display row and the entry it belongs to. */
  private readonly wrapped = memo(
    (
      entries: readonly LogEntry[],
      _v: number,
      width: number,
      _ts: boolean,
      _search: string,
      _job: unknown,
    ) => {
      const rows: { entry: number; line: Line }[] = [];
      entries.forEach((e, i) => {
        for (const line of wrapLine(this.entryLine(e), width)) rows.push({ entry: i, line });
      });
      return rows;
    },
  );
  private readonly matchCount = memo((entries: readonly LogEntry[], _n: number, search: string) =>
    search ? entries.reduce((n, e) => n + (hits(e, search) ? 1 : 0), 0) : 0,
  );

  constructor(
    private readonly ctx: ViewContext,
    readonly jobId: string,
  ) {
    this.log = new JobLogStore(ctx.backend, jobId);
    this.ticker = new Ticker(1000, () => ctx.requestRender());
  }

  /** `&`: the lines shown are those that match (Esc clears it). */
  readonly filter = {
    get: () => this.query,
    set: (value: string) => {
      this.query = value.toLowerCase();
      this.ctx.requestRender();
    },
  };

  private entries(): readonly LogEntry[] {
    return this.shown(this.log.version, this.log.entries.length, this.query);
  }

  private rows(): { entry: number; line: Line }[] | null {
    if (!this.wrap || !this.body) return null;
    return this.wrapped(
      this.entries(),
      this.log.version,
      this.body.width,
      this.timestamps,
      this.search,
      this.log.job,
    );
  }

  /** Rows on screen: one per entry, or more with wrap on; the end marker after them. */
  private count(): number {
    const tail = this.log.end ? 1 : 0;
    return (this.rows()?.length ?? this.entries().length) + tail;
  }

  title(): Line {
    // What the operator set (search, filter, wrap) comes first: on 80 columns the rest may be cut,
    // and the stream's own state is also in the status bar and the log's last line.
    const line: Line = [{ text: " Job log ", bold: true }, { text: this.jobId }];
    if (this.search) {
      const n = this.matchCount(this.entries(), this.log.version, this.search);
      line.push({ text: `  search: ${this.search} (${n} ${n === 1 ? "line" : "lines"}; n/N)` });
    }
    if (this.query) line.push({ text: `  filter: ${this.query}` });
    if (this.wrap) line.push({ text: "  wrapping long lines" });
    else if (this.hscroll > 0) line.push({ text: `  from column ${this.hscroll + 1}` });
    line.push({ text: "  " }, connectionCell(this.log.feedState, Date.now()));
    line.push({ text: this.cursor.follow ? "  following" : "  paused (G or f to follow)" });
    return line;
  }

  /** Moves to the next (or previous) line that matches the search, from the selected one. */
  private jumpToMatch(dir: 1 | -1): void {
    if (!this.search) {
      this.ctx.stores.session.say("nothing to find: / sets a search", "error");
      return;
    }
    const entries = this.entries();
    const rows = this.rows();
    const here = rows ? (rows[this.cursor.index]?.entry ?? 0) : this.cursor.index;
    for (let k = 1; k <= entries.length; k++) {
      const i = (here + dir * k + entries.length * 2) % entries.length;
      const e = entries[i];
      if (!e || !hits(e, this.search)) continue;
      this.cursor.follow = false;
      this.cursor.index = rows ? rows.findIndex((r) => r.entry === i) : i;
      if (dir === 1 ? i <= here : i >= here) this.ctx.stores.session.say("search wrapped around");
      this.ctx.requestRender();
      return;
    }
    this.ctx.stores.session.say(`no line contains "${this.search}"`, "error");
  }

  private openSearch(): void {
    this.ctx.prompt({
      kind: "input",
      label: "/",
      initial: this.search,
      onSubmit: (value) => {
        this.search = value.trim().toLowerCase();
        if (this.search) this.jumpToMatch(1);
        this.ctx.requestRender();
      },
    });
  }

  private openFilter(): void {
    const before = this.query;
    this.ctx.prompt({
      kind: "input",
      label: "&",
      initial: this.query,
      onChange: (value) => this.filter.set(value),
      onSubmit: (value) => this.filter.set(value.trim()),
      onCancel: () => this.filter.set(before),
    });
  }

  /** Ctrl-S: asks for a path (Tab completes), asks before replacing a file, writes the lines held. */
  private save(): void {
    this.ctx.prompt({
      kind: "input",
      label: "Save the log to: ",
      initial: `./${this.jobId}.log`,
      complete: completePath,
      validate: (v) => (v.trim() === "" ? "a file name, please" : null),
      onSubmit: (value) => {
        const path = fileTarget(value, `${this.jobId}.log`);
        if (existsSync(path))
          this.ctx.prompt({
            kind: "confirm",
            question: `${path} exists. Replace it?`,
            onYes: () => void this.write(path, "w"),
            onNo: () => this.ctx.stores.session.say("not saved"),
          });
        else void this.write(path, "wx");
      },
    });
  }

  private async write(path: string, flag: "w" | "wx"): Promise<void> {
    const out: string[] = [];
    for (const e of this.log.entries) {
      if (e.kind === "line") out.push(logLineText(e.line));
      else if (e.kind === "attempt") out.push(`== attempt ${e.attempt} ==`);
      else out.push(`== step ${e.step + 1} ==`);
    }
    const lines = this.log.entries.filter((e) => e.kind === "line").length;
    try {
      await writeFile(path, out.length > 0 ? `${out.join("\n")}\n` : "", { flag, mode: 0o600 });
      const dropped = this.log.dropped > 0 ? ` (the ${this.log.dropped} oldest were no longer held)` : "";
      this.ctx.stores.session.say(`saved ${lines} lines to ${path}${dropped}`);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why =
        e.code === "ENOENT"
          ? "its directory does not exist"
          : e.code === "EACCES"
            ? "permission denied"
            : e.code === "EISDIR"
              ? "that is a directory"
              : e.message;
      this.ctx.stores.session.say(`cannot save to ${path}: ${why}`, "error");
    }
  }

  keys(): KeyBinding[] {
    const { actions } = this.ctx;
    const moved = () => this.ctx.requestRender();
    const page = () => this.body?.pageSize ?? 10;
    const withJob = (fn: (j: NonNullable<JobLogStore["job"]>) => void) => () => {
      if (this.log.job) fn(this.log.job);
    };
    const follow = () => {
      this.cursor.bottom(this.count(), true);
      moved();
    };
    const toggle = (what: "wrap" | "timestamps") => () => {
      this[what] = !this[what];
      this.hscroll = 0;
      this.ctx.stores.session.say(
        what === "wrap"
          ? this.wrap
            ? "long lines wrap"
            : "long lines are cut (← → scroll)"
          : this.timestamps
            ? "times shown"
            : "times hidden",
      );
      moved();
    };
    const scroll = (by: number) => () => {
      if (this.wrap) return;
      this.hscroll = Math.max(0, Math.min(this.hscroll + by, 64 * 1024));
      moved();
    };
    return [
      { key: "f", description: "follow new lines", hint: true, handler: follow },
      {
        key: "/",
        description: "search: mark matching text (n, N go to the next and previous)",
        hint: true,
        handler: () => this.openSearch(),
      },
      { key: "n", description: "next match", handler: () => this.jumpToMatch(1) },
      { key: "N", description: "previous match", handler: () => this.jumpToMatch(-1) },
      { key: "&", description: "filter: show only matching lines", handler: () => this.openFilter() },
      { key: "w", description: "wrap long lines, or cut them", hint: true, handler: toggle("wrap") },
      { key: "t", description: "show or hide times", handler: toggle("timestamps") },
      { key: "right", description: "scroll long lines right", handler: scroll(HSTEP) },
      { key: "left", description: "scroll long lines left", handler: scroll(-HSTEP) },
      { key: "0", description: "back to the first column", handler: scroll(-Number.MAX_SAFE_INTEGER) },
      { key: "C-s", description: "save the log to a file", hint: true, handler: () => this.save() },
      {
        key: "i",
        description: "the job in full: attempts, agent, times, steps",
        hint: true,
        handler: () => this.ctx.openJobDetail(this.jobId),
      },
      ...jobActionKeys(actions, withJob),
      ...listKeys(this.cursor, () => this.count(), page, moved).map((b) =>
        b.key === "G" ? { ...b, description: "last line, and follow", handler: follow } : b,
      ),
    ];
  }

  start(): void {
    const { region, color } = this.ctx;
    this.header = new TextWidget(region, { top: 0, left: 0, width: "100%", height: 2 }, color);
    this.body = new TableWidget(region, { top: 2, left: 0, width: "100%", height: "100%-2" }, color, {
      border: true,
      label: "log",
      ...(this.ctx.mouse
        ? {
            mouse: {
              click: (index: number) => {
                if (index >= this.count()) return;
                this.cursor.follow = false;
                this.cursor.index = index;
                this.ctx.requestRender();
              },
              wheel: (delta: number) => {
                this.cursor.move(delta, this.count());
                this.ctx.requestRender();
              },
            },
          }
        : {}),
    });
    this.unsubscribe = [
      this.log.subscribe(() => this.ctx.requestRender()),
      this.ctx.sync.onJobChange((id) => {
        if (id === this.jobId) this.log.jobChanged();
      }),
    ];
    this.log.start();
    this.ticker.start();
  }

  stop(): void {
    this.ticker.stop();
    this.log.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.header?.destroy();
    this.body?.destroy();
    this.header = null;
    this.body = null;
  }

  /** An entry as drawn: a log line (times as set, search marked), a step rule or an attempt rule. */
  private entryLine(e: LogEntry): Line {
    if (e.kind === "attempt") return attemptMarker(e.attempt);
    if (e.kind === "step") {
      const job = this.log.job;
      const step = job?.steps.find((s) => s.index === e.step);
      // Until the job is loaded its attempt is unknown: show no state rather than a wrong one.
      // A job back in the queue has not started its next attempt: its steps were reset, and
      // the markers of the attempt that was cut short must not show that reset state.
      const current = job !== null && e.attempt === job.attempt && job.state !== "queued";
      return stepMarker(e.step, step, current ? undefined : e.attempt);
    }
    const line = logLineView(e.line, this.timestamps);
    return this.search ? highlight(line, this.search) : line;
  }

  draw(now: number): void {
    if (!this.header || !this.body) return;
    const { job, end, error } = this.log;
    const agentName = (id: string) => this.ctx.stores.agents.nameOf(id);
    const top: Line[] = job
      ? [jobHeader(job, now, agentName), stepsLine(job.steps)]
      : [[{ text: error ? `cannot load the job: ${error}` : "loading…", color: error ? "red" : "gray" }]];
    this.header.setLines(top);
    const entries = this.entries();
    const rows = this.rows();
    const width = this.body.width;
    const dropped = this.log.dropped > 0 ? ` (${this.log.dropped} older lines dropped)` : "";
    this.body.setLabel(`log: ${entries.length} lines${dropped}`);
    const shownRows = rows?.length ?? entries.length;
    this.body.draw({
      header: null,
      count: this.count(),
      row: (i) => {
        if (i >= shownRows) return end ? endMarker(end.state, end.exitCode) : [];
        if (rows) return rows[i]?.line ?? [];
        const e = entries[i];
        return e ? clipLine(this.entryLine(e), this.hscroll, width) : [];
      },
      cursor: this.cursor,
      highlight: !this.cursor.follow,
      empty: [{ text: "no output yet", color: "gray" }],
    });
  }
}
