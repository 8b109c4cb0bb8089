import type { Job } from "@skiff/protocol";
import { memo } from "../model/emitter.ts";
import type { KeyBinding } from "../model/keys.ts";
import { fleetActual } from "../render/fleet.ts";
import { formatClock } from "../render/format.ts";
import { overviewLines, recentEventLine, successRate } from "../render/overview.ts";
import type { Line } from "../render/style.ts";
import { type Gauge, LineChartWidget, makeGauge } from "../widgets/charts.ts";
import { TextWidget } from "../widgets/table.ts";
import { Ticker, type View, type ViewContext } from "./view.ts";

/** Under this many columns Overview leaves out the gauge and gives its summary the width. */
const NARROW = 80;

/** Counts, queue depth and throughput charts, fleet use, and the latest events. */
export class OverviewView implements View {
  readonly name = "overview";
  private summary: TextWidget | null = null;
  private gauge: Gauge | null = null;
  /** Whether the widgets were laid out for a terminal under NARROW columns. */
  private laidOutNarrow = false;
  private depth: LineChartWidget | null = null;
  private throughput: LineChartWidget | null = null;
  private events: TextWidget | null = null;
  private unsubscribe: (() => void)[] = [];
  private readonly ticker: Ticker;
  private readonly rate = memo((_v: number, jobs: readonly Job[]) => successRate(jobs));
  private readonly unserved = memo((_jobs: number, _agents: number) => {
    const { jobs, agents } = this.ctx.stores;
    return agents.size > 0 ? jobs.unserved(agents.servedQueues()) : new Map<string, number>();
  });

  constructor(private readonly ctx: ViewContext) {
    this.ticker = new Ticker(5000, () => ctx.requestRender());
  }

  title(): Line {
    return [{ text: " Overview ", bold: true }];
  }

  keys(): KeyBinding[] {
    return this.ctx.actions.scaleKeys();
  }

  start(): void {
    const { region, color, stores } = this.ctx;
    // Under 80 columns the summary takes the whole width: its Fleet line says what the gauge would.
    const narrow = Number(region.width) < NARROW;
    this.laidOutNarrow = narrow;
    this.summary = new TextWidget(
      region,
      { top: 0, left: 0, width: narrow ? "100%" : "60%", height: 6 },
      color,
    );
    if (!narrow)
      this.gauge = makeGauge(region, { top: 0, left: "60%", width: "40%", height: 6 }, color, "fleet");
    this.depth = new LineChartWidget(
      region,
      { top: 6, left: 0, width: "50%", height: "50%" },
      color,
      "queue depth",
    );
    this.throughput = new LineChartWidget(
      region,
      { top: 6, left: "50%", width: "50%", height: "50%" },
      color,
      "throughput",
    );
    this.events = new TextWidget(region, { top: "50%+6", left: 0, width: "100%", height: "50%-6" }, color, {
      border: true,
      label: "recent events",
    });
    this.unsubscribe = [stores.agents, stores.jobs, stores.fleet, stores.metrics].map((s) =>
      s.subscribe(() => this.ctx.requestRender()),
    );
    this.ticker.start();
  }

  stop(): void {
    this.ticker.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const w of [this.summary, this.gauge, this.depth, this.throughput, this.events]) w?.destroy();
    this.summary = this.gauge = this.depth = this.throughput = this.events = null;
  }

  draw(now: number): void {
    // Resized across the narrow line: lay the widgets out again (with or without the gauge).
    if (this.summary && Number(this.ctx.region.width) < NARROW !== this.laidOutNarrow) {
      this.stop();
      this.start();
    }
    const { agents, jobs, fleet, metrics } = this.ctx.stores;
    const counts = agents.counts();
    const rate = this.rate(jobs.version, jobs.list());
    const f = fleet.view;
    this.summary?.setLines(
      overviewLines({
        agents: counts,
        queued: jobs.total("queued"),
        running: jobs.total("running") + jobs.total("assigned") + jobs.total("canceling"),
        rate,
        fleet: f,
        unserved: this.unserved(jobs.version, agents.version),
        width: this.summary.width,
      }),
    );
    const desired = f?.desired ?? 0;
    const actual = f ? fleetActual(f, counts.online) : counts.online;
    this.gauge?.set(
      desired > 0 ? (actual / desired) * 100 : 0,
      f ? `fleet ${actual} of ${desired} workers` : "fleet: loading",
    );
    const s = metrics.series(now);
    const x = s.times.map((t) => formatClock(new Date(t).toISOString()));
    const lastDepth = s.queueDepth.at(-1) ?? 0;
    const lastRate = s.throughput.at(-1) ?? 0;
    this.depth?.set(`queue depth: ${lastDepth}`, { title: "queued", x, y: s.queueDepth, color: "cyan" });
    this.throughput?.set(`throughput: ${lastRate.toFixed(0)} jobs/min`, {
      title: "jobs/min",
      x,
      y: s.throughput,
      color: "green",
    });
    if (this.events) {
      const fits = Math.max(1, this.events.height - 2);
      const recent = metrics.events().slice(0, fits);
      this.events.setLines(
        recent.length > 0 ? recent.map(recentEventLine) : [[{ text: "no events yet", color: "gray" }]],
      );
    }
  }
}
