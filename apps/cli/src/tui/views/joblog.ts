import { Cursor } from "../model/cursor.ts";
import { memo } from "../model/emitter.ts";
import { JobLogStore, type LogEntry } from "../model/joblog.ts";
import type { KeyBinding } from "../model/keys.ts";
import { attemptMarker, endMarker, jobHeader, logLineView, stepMarker, stepsLine } from "../render/joblog.ts";
import { connectionCell } from "../render/status.ts";
import type { Line } from "../render/style.ts";
import { TableWidget, TextWidget } from "../widgets/table.ts";
import { jobActionKeys } from "./actions.ts";
import { listKeys } from "./listkeys.ts";
import { Ticker, type View, type ViewContext } from "./view.ts";

function matches(e: LogEntry, query: string): boolean {
  return e.kind !== "line" || e.line.text.toLowerCase().includes(query);
}

/**
 * One job's log, followed live (new lines keep the last one in view until you scroll up; `G` or `f`
 * follows again), with a rule where each step starts and the steps' states and exit codes on top.
 * `/` narrows the log to matching lines.
 */
export class JobLogView implements View {
  readonly name = "log";
  private readonly log: JobLogStore;
  private readonly cursor = new Cursor(true);
  private query = "";
  private header: TextWidget | null = null;
  private body: TableWidget | null = null;
  private unsubscribe: (() => void)[] = [];
  private readonly ticker: Ticker;
  private readonly shown = memo((_v: number, _n: number, query: string) =>
    query ? this.log.entries.filter((e) => matches(e, query)) : this.log.entries,
  );

  constructor(
    private readonly ctx: ViewContext,
    readonly jobId: string,
  ) {
    this.log = new JobLogStore(ctx.backend, jobId);
    this.ticker = new Ticker(1000, () => ctx.requestRender());
  }

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

  title(): Line {
    const line: Line = [{ text: " Job log ", bold: true }, { text: `${this.jobId}  ` }];
    line.push(connectionCell(this.log.feedState, Date.now()));
    line.push({ text: this.cursor.follow ? "  following" : "  paused (G or f to follow)" });
    if (this.query) line.push({ text: `  search: ${this.query}` });
    return line;
  }

  keys(): KeyBinding[] {
    const { actions } = this.ctx;
    const moved = () => this.ctx.requestRender();
    const page = () => this.body?.pageSize ?? 10;
    const withJob = (fn: (j: NonNullable<JobLogStore["job"]>) => void) => () => {
      if (this.log.job) fn(this.log.job);
    };
    const follow = () => {
      this.cursor.bottom(this.entries().length, true);
      moved();
    };
    return [
      { key: "f", description: "follow new lines", hint: true, handler: follow },
      {
        key: "i",
        description: "the job in full: attempts, agent, times, steps",
        hint: true,
        handler: () => this.ctx.openJobDetail(this.jobId),
      },
      ...jobActionKeys(actions, withJob),
      ...listKeys(this.cursor, () => this.entries().length, page, moved).map((b) =>
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

  draw(now: number): void {
    if (!this.header || !this.body) return;
    const { job, end, error } = this.log;
    const agentName = (id: string) => this.ctx.stores.agents.nameOf(id);
    const top: Line[] = job
      ? [jobHeader(job, now, agentName), stepsLine(job.steps)]
      : [[{ text: error ? `cannot load the job: ${error}` : "loading…", color: error ? "red" : "gray" }]];
    this.header.setLines(top);
    const entries = this.entries();
    const steps = job?.steps ?? [];
    const tail = end ? 1 : 0;
    const dropped = this.log.dropped > 0 ? ` (${this.log.dropped} older lines dropped)` : "";
    this.body.setLabel(`log: ${entries.length} lines${dropped}`);
    this.body.draw({
      header: null,
      count: entries.length + tail,
      row: (i) => {
        const e = entries[i];
        if (!e) return end ? endMarker(end.state, end.exitCode) : [];
        if (e.kind === "attempt") return attemptMarker(e.attempt);
        if (e.kind === "step") {
          const step = steps.find((s) => s.index === e.step);
          // Until the job is loaded its attempt is unknown: show no state rather than a wrong one.
          // A job back in the queue has not started its next attempt: its steps were reset, and
          // the markers of the attempt that was cut short must not show that reset state.
          const current = job !== null && e.attempt === job.attempt && job.state !== "queued";
          return stepMarker(e.step, step, current ? undefined : e.attempt);
        }
        return logLineView(e.line);
      },
      cursor: this.cursor,
      highlight: !this.cursor.follow,
      empty: [{ text: "no output yet", color: "gray" }],
    });
  }
}
