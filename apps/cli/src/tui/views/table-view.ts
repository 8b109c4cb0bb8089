import { Cursor } from "../model/cursor.ts";
import { type Emitter, memo } from "../model/emitter.ts";
import { applyFilter, type Fields, isTimeRelative } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { Line } from "../render/style.ts";
import { type Column, columnWidths, tableHeader, tableRow } from "../render/table.ts";
import { TableWidget } from "../widgets/table.ts";
import { listKeys } from "./listkeys.ts";
import { Ticker, type View, type ViewContext, type ViewName } from "./view.ts";

/**
 * A view that is one filterable table over a store: Agents, Jobs, Audit. The selection follows its row
 * (by id) when the rows are re-sorted or filtered.
 */
export abstract class TableView<T> implements View {
  abstract readonly name: ViewName;
  protected readonly cursor = new Cursor();
  protected table: TableWidget | null = null;
  private filterText = "";
  private selectedId: string | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly ticker: Ticker | null;
  private readonly filtered = memo((_version: number, query: string, clock: number, _source: string) => {
    const time = this.timeOf ? (row: T) => (this.timeOf as (row: T) => number)(row) : undefined;
    return applyFilter(this.source(), query, (row) => this.fields(row), {
      ...(time ? { time } : {}),
      now: clock || Date.now(),
    });
  });

  constructor(
    protected readonly ctx: ViewContext,
    tickMs: number | null,
  ) {
    this.ticker = tickMs === null ? null : new Ticker(tickMs, () => ctx.requestRender());
  }

  protected abstract label(): string;
  protected abstract store(): Emitter;
  protected abstract source(): readonly T[];
  protected abstract fields(row: T): Fields;
  protected abstract columns(now: number): Column<T>[];
  protected abstract idOf(row: T): string;
  protected abstract viewKeys(): KeyBinding[];
  /** The row's time in milliseconds, where `since:` and `until:` apply to this view. */
  protected timeOf?(row: T): number;
  protected empty(): Line {
    return [{ text: this.filterText ? "no rows match the filter" : "nothing here yet", color: "gray" }];
  }

  readonly filter = {
    get: () => this.filterText,
    set: (value: string) => {
      this.filterText = value;
      this.ctx.requestRender();
    },
  };

  rows(): readonly T[] {
    // A `since:1h` window slides with the clock: recomputed once a second, not on every frame.
    const clock = isTimeRelative(this.filterText) ? Math.floor(Date.now() / 1000) * 1000 : 0;
    return this.filtered(this.store().version, this.filterText, clock, this.sourceKey());
  }

  /** Changes when `source()` would answer differently without the store changing (a toggle, time). */
  protected sourceKey(): string {
    return "";
  }

  selected(): T | undefined {
    return this.rows()[this.cursor.index];
  }

  title(): Line {
    const total = this.source().length;
    const shown = this.rows().length;
    const count = shown === total ? `${total}` : `${shown}/${total}`;
    const line: Line = [{ text: ` ${this.label()} `, bold: true }, { text: `(${count})` }];
    if (this.filterText) line.push({ text: `  filter: ${this.filterText}` });
    return line;
  }

  keys(): KeyBinding[] {
    const moved = () => {
      const row = this.selected();
      this.selectedId = row ? this.idOf(row) : null;
      this.ctx.requestRender();
    };
    const page = () => this.table?.pageSize ?? 10;
    return [...this.viewKeys(), ...listKeys(this.cursor, () => this.rows().length, page, moved)];
  }

  start(): void {
    this.table = new TableWidget(
      this.ctx.region,
      { top: 0, left: 0, width: "100%", height: "100%" },
      this.ctx.color,
    );
    this.unsubscribe = this.store().subscribe(() => this.ctx.requestRender());
    this.ticker?.start();
  }

  stop(): void {
    this.ticker?.stop();
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.table?.destroy();
    this.table = null;
  }

  draw(now: number): void {
    const table = this.table;
    if (!table) return;
    const rows = this.rows();
    const current = rows[this.cursor.index];
    if (this.selectedId !== null && (!current || this.idOf(current) !== this.selectedId))
      this.cursor.seek(rows, (r) => this.idOf(r) === this.selectedId);
    const columns = this.columns(now);
    const widths = columnWidths(columns, table.width);
    table.draw({
      header: tableHeader(columns, widths),
      count: rows.length,
      row: (i) => {
        const row = rows[i];
        return row === undefined ? [] : tableRow(columns, widths, row);
      },
      cursor: this.cursor,
      empty: this.empty(),
    });
    const sel = rows[this.cursor.index];
    this.selectedId = sel ? this.idOf(sel) : null;
  }
}
