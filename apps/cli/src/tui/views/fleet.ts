import { Cursor } from "../model/cursor.ts";
import type { KeyBinding } from "../model/keys.ts";
import { decisionColumns, fleetSummary } from "../render/fleet.ts";
import type { Line } from "../render/style.ts";
import { columnWidths, tableHeader, tableRow } from "../render/table.ts";
import { TableWidget, TextWidget } from "../widgets/table.ts";
import { listKeys } from "./listkeys.ts";
import { Ticker, type View, type ViewContext } from "./view.ts";

/** Desired against actual workers, the mode and its settings, the scaler and the controller's decisions. */
export class FleetView implements View {
  readonly name = "fleet";
  private readonly cursor = new Cursor();
  private summary: TextWidget | null = null;
  private decisions: TableWidget | null = null;
  private unsubscribe: (() => void)[] = [];
  private readonly ticker: Ticker;

  constructor(private readonly ctx: ViewContext) {
    this.ticker = new Ticker(1000, () => ctx.requestRender());
  }

  title(): Line {
    return [{ text: " Fleet ", bold: true }];
  }

  keys(): KeyBinding[] {
    const count = () => this.ctx.stores.fleet.view?.decisions.length ?? 0;
    const page = () => this.decisions?.pageSize ?? 10;
    return [
      ...this.ctx.actions.scaleKeys(),
      {
        key: "a",
        description: "autoscale: set min, max and warm",
        dangerous: true,
        hint: true,
        handler: () => this.ctx.actions.autoscalePrompt(),
      },
      ...listKeys(this.cursor, count, page, () => this.ctx.requestRender()),
    ];
  }

  start(): void {
    const { region, color, stores } = this.ctx;
    this.summary = new TextWidget(region, { top: 0, left: 0, width: "100%", height: 7 }, color);
    this.decisions = new TableWidget(region, { top: 7, left: 0, width: "100%", height: "100%-7" }, color, {
      border: true,
      label: "controller decisions",
    });
    this.unsubscribe = [
      stores.fleet.subscribe(() => this.ctx.requestRender()),
      stores.agents.subscribe(() => this.ctx.requestRender()),
    ];
    this.ctx.sync.refetchFleet(0);
    this.ticker.start();
  }

  stop(): void {
    this.ticker.stop();
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    this.summary?.destroy();
    this.decisions?.destroy();
    this.summary = null;
    this.decisions = null;
  }

  draw(now: number): void {
    if (!this.summary || !this.decisions) return;
    const { fleet, agents } = this.ctx.stores;
    const f = fleet.view;
    if (!f) {
      this.summary.setLines([[{ text: "loading the fleet…", color: "gray" }]]);
      return;
    }
    this.summary.setLines(fleetSummary(f, agents.counts().online, now));
    const cols = decisionColumns();
    const widths = columnWidths(cols, this.decisions.width);
    this.decisions.draw({
      header: tableHeader(cols, widths),
      count: f.decisions.length,
      row: (i) => {
        const d = f.decisions[i];
        return d ? tableRow(cols, widths, d) : [];
      },
      cursor: this.cursor,
      empty: [{ text: "no decisions yet: is a controller running?", color: "gray" }],
    });
  }
}
