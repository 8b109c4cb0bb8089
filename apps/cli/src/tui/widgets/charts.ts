import blessed from "blessed";
import line from "blessed-contrib/lib/widget/charts/line.js";
import gauge from "blessed-contrib/lib/widget/gauge.js";
import type { Color, Palette } from "../render/style.ts";
import type { Pos, Region } from "./layout.ts";

export interface ChartSeries {
  title: string;
  x: string[];
  y: number[];
  color: Color;
}

/**
 * blessed-contrib sizes a chart's canvas once, when it is attached; after a resize the widget is made
 * again at the new size. Attaching after construction matters too: the canvas appears on `attach`.
 */
abstract class CanvasWidget<W extends blessed.Widgets.BoxElement> {
  protected w: W;
  private size = "";

  constructor(
    private readonly parent: Region,
    protected readonly pos: Pos,
    protected readonly color: Palette,
    protected readonly title: string,
  ) {
    this.w = this.attach();
  }

  protected abstract make(): W;

  private attach(): W {
    const w = this.make();
    this.parent.append(w);
    this.size = `${w.width}x${w.height}`;
    return w;
  }

  /** True when the widget was made again (its data must be set again). */
  protected refit(): boolean {
    if (`${this.w.width}x${this.w.height}` === this.size) return false;
    this.w.destroy();
    this.w = this.attach();
    return true;
  }

  destroy(): void {
    this.w.destroy();
  }
}

/** A blessed-contrib line chart; the label carries the latest value so it reads without the plot. */
export class LineChartWidget extends CanvasWidget<ReturnType<typeof line>> {
  private lastKey = "";

  protected make() {
    return line({
      ...this.pos,
      label: ` ${this.title} `,
      border: { type: "line" },
      showLegend: false,
      xLabelPadding: 3,
      xPadding: 5,
      // "normal" is drawille's word for no colour at all (NO_COLOR).
      style: this.color
        ? { line: "white", text: "green", baseline: "white" }
        : { line: "normal", text: "normal", baseline: "normal" },
    });
  }

  set(label: string, series: ChartSeries): void {
    // Drawing the braille canvas is the costly part of a frame: only when the data changed.
    const key = `${label}|${series.y.join(",")}|${series.x[0] ?? ""}`;
    if (!this.refit() && key === this.lastKey) return;
    this.lastKey = key;
    this.w.setLabel(` ${label} `);
    if (Number(this.w.height) < 6 || Number(this.w.width) < 16) return;
    this.w.setData([
      {
        title: series.title,
        x: series.x,
        y: series.y,
        style: { line: this.color ? series.color : "normal" },
      },
    ]);
  }
}

export interface Gauge {
  set(percent: number, label: string): void;
  destroy(): void;
}

/** A gauge: blessed-contrib's in colour; without colour its bar would not show, so one of block characters. */
export function makeGauge(parent: Region, pos: Pos, color: Palette, title: string): Gauge {
  return color ? new ContribGauge(parent, pos, color, title) : new TextGauge(parent, pos, title);
}

/** blessed-contrib's gauge, with the figures in its label (the bar alone needs colour to read). */
class ContribGauge extends CanvasWidget<ReturnType<typeof gauge>> implements Gauge {
  private last = -1;

  protected make() {
    return gauge({
      ...this.pos,
      label: ` ${this.title} `,
      border: { type: "line" },
      stroke: "green",
      fill: "white",
      percent: 0,
    });
  }

  set(percent: number, label: string): void {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    const remade = this.refit();
    this.w.setLabel(` ${label} `);
    if (!remade && p === this.last) return;
    this.last = p;
    this.w.setPercent(p);
  }
}

class TextGauge implements Gauge {
  private readonly box: blessed.Widgets.BoxElement;

  constructor(parent: Region, pos: Pos, title: string) {
    this.box = blessed.box({ parent, ...pos, border: "line", label: ` ${title} ` });
  }

  set(percent: number, label: string): void {
    const p = Math.max(0, Math.min(100, Math.round(percent)));
    const width = Math.max(1, Number(this.box.width) - 8);
    const full = Math.round((width * p) / 100);
    this.box.setLabel(` ${label} `);
    this.box.setContent(`${"█".repeat(full)}${"░".repeat(width - full)} ${p}%`);
  }

  destroy(): void {
    this.box.destroy();
  }
}
