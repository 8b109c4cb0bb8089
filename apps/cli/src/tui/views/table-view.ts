import { Cursor } from "../model/cursor.ts";
import { type Emitter, memo } from "../model/emitter.ts";
import { applyFilter, type Fields, filterProblem, isTimeRelative } from "../model/filter.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { Line } from "../render/style.ts";
import { type Column, columnWidths, sortRows, tableHeader, tableRow } from "../render/table.ts";
import { type TableMouse, TableWidget } from "../widgets/table.ts";
import { listKeys } from "./listkeys.ts";
import { Ticker, type View, type ViewContext, type ViewName } from "./view.ts";

/** Below this many columns the ID column is left out until `I` asks for it. */
const ID_MIN_WIDTH = 100;

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
  /** The column the rows are sorted on (by title; null: the view's own order), and which way. */
  private sortTitle: string | null = null;
  private descending = false;
  /** Whether the ID column is shown (`I`); null: when the table is wide enough for it. */
  private showIds: boolean | null;
  private readonly sorted = memo(
    (rows: readonly T[], title: string | null, descending: boolean, _clock: number): readonly T[] => {
      const column = title === null ? undefined : this.allColumns(Date.now()).find((c) => c.title === title);
      return column ? sortRows(rows, column, descending) : rows;
    },
  );

  constructor(
    protected readonly ctx: ViewContext,
    tickMs: number | null,
    opts: { showIds?: boolean } = {},
  ) {
    this.ticker = tickMs === null ? null : new Ticker(tickMs, () => ctx.requestRender());
    this.showIds = opts.showIds ?? null;
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
    problem: (value: string) => filterProblem(value, this.timeOf !== undefined),
  };

  rows(): readonly T[] {
    // A `since:1h` window slides with the clock: recomputed once a second, not on every frame.
    const clock = isTimeRelative(this.filterText) ? Math.floor(Date.now() / 1000) * 1000 : 0;
    const rows = this.filtered(this.store().version, this.filterText, clock, this.sourceKey());
    // Sorting on a time-based column (an age, a heartbeat) is refreshed once a second as well.
    return this.sorted(
      rows,
      this.sortTitle,
      this.descending,
      this.sortTitle ? Math.floor(Date.now() / 1000) : 0,
    );
  }

  /**
   * The columns shown: all of them, less the ID column when it is toggled off, or, until `I` is
   * pressed, on a table narrower than ID_MIN_WIDTH (a 26-character id would crowd out the rest).
   */
  private shownColumns(now: number): Column<T>[] {
    const all = this.allColumns(now);
    return this.idsShown() ? all : all.filter((c) => c.title !== "ID");
  }

  private idsShown(): boolean {
    return this.showIds ?? (this.table?.width ?? ID_MIN_WIDTH) >= ID_MIN_WIDTH;
  }

  private allColumns(now: number): Column<T>[] {
    return this.columns(now);
  }

  /** Moves the sort to the next (or previous) sortable column; past the last, back to no sort. */
  private moveSort(dir: 1 | -1): void {
    const cols = this.shownColumns(Date.now()).filter((c) => c.sort);
    const at = this.sortTitle === null ? -1 : cols.findIndex((c) => c.title === this.sortTitle);
    const next = at + dir;
    const target =
      dir === 1
        ? next >= cols.length
          ? null
          : cols[next]
        : at === -1
          ? cols.at(-1)
          : next < 0
            ? null
            : cols[next];
    this.sortTitle = target?.title ?? null;
    this.descending = false;
    this.ctx.stores.session.say(
      this.sortTitle ? `sorted by ${this.sortTitle} (~ reverses)` : "in the view's own order",
    );
    this.ctx.requestRender();
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
    const tableKeys: KeyBinding[] = [
      { key: ">", description: "sort by the next column", handler: () => this.moveSort(1) },
      { key: "<", description: "sort by the previous column", handler: () => this.moveSort(-1) },
      {
        key: "~",
        description: "reverse the sort",
        handler: () => {
          if (this.sortTitle === null) {
            this.ctx.stores.session.say("not sorted: > or < picks a column", "error");
            return;
          }
          this.descending = !this.descending;
          this.ctx.requestRender();
        },
      },
      {
        key: "I",
        description: "show or hide the ID column",
        handler: () => {
          this.showIds = !this.idsShown();
          this.ctx.requestRender();
        },
      },
    ];
    return [
      ...this.viewKeys(),
      ...tableKeys,
      ...listKeys(this.cursor, () => this.rows().length, page, moved),
    ];
  }

  start(): void {
    this.table = new TableWidget(
      this.ctx.region,
      { top: 0, left: 0, width: "100%", height: "100%" },
      this.ctx.color,
      this.ctx.mouse ? { mouse: this.mouseHandlers() } : {},
    );
    this.unsubscribe = this.store().subscribe(() => this.ctx.requestRender());
    this.ticker?.start();
  }

  private mouseHandlers(): TableMouse {
    const select = () => {
      const row = this.selected();
      this.selectedId = row ? this.idOf(row) : null;
      this.ctx.requestRender();
    };
    return {
      click: (index) => {
        if (index >= this.rows().length) return;
        this.cursor.index = index;
        select();
      },
      wheel: (delta) => {
        this.cursor.move(delta, this.rows().length);
        select();
      },
    };
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
    const columns = this.shownColumns(now);
    const widths = columnWidths(columns, table.width);
    const sortIndex = this.sortTitle === null ? -1 : columns.findIndex((c) => c.title === this.sortTitle);
    table.draw({
      header: tableHeader(
        columns,
        widths,
        undefined,
        sortIndex >= 0 ? { index: sortIndex, descending: this.descending } : null,
      ),
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
