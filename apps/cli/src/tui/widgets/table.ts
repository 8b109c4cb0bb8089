import blessed from "blessed";
import type { Cursor } from "../model/cursor.ts";
import type { Line, Palette } from "../render/style.ts";
import { displayWidth } from "../render/text.ts";
import type { Pos, Region } from "./layout.ts";
import { inverse, toTags } from "./markup.ts";

export interface TableSource {
  /** The column titles, or null for a plain list (a log). */
  header: Line | null;
  count: number;
  /** Row `i`, built only for the rows on screen. */
  row(i: number): Line;
  cursor: Cursor;
  /** Shown when there are no rows. */
  empty?: Line;
  /** Whether the selected row is highlighted (off for a log that is only followed). */
  highlight?: boolean;
}

/**
 * A table that builds only the rows it shows, so ten thousand rows cost what forty do. Selection and
 * scrolling live in a `Cursor`; this draws them.
 */
/** What a click or the wheel over a table does: select row `index`, or move the selection. */
export interface TableMouse {
  click(index: number): void;
  wheel(delta: number): void;
}

export class TableWidget {
  private readonly box: blessed.Widgets.BoxElement;
  private readonly bordered: boolean;
  /** The first row drawn and whether a header line sits above it, for mapping a click to a row. */
  private drawnFrom = 0;
  private headerRows = 0;

  constructor(
    parent: Region,
    pos: Pos,
    private readonly color: Palette,
    opts: { label?: string; border?: boolean; mouse?: TableMouse } = {},
  ) {
    this.bordered = opts.border ?? false;
    this.box = blessed.box({
      parent,
      ...pos,
      tags: true,
      wrap: false,
      ...(this.bordered ? { border: "line" as const } : {}),
      ...(opts.label ? { label: ` ${opts.label} ` } : {}),
    });
    const mouse = opts.mouse;
    // Listening for mouse events is what turns mouse reporting on: only when it was asked for, since
    // it takes text selection away from the terminal.
    if (mouse) {
      this.box.on("click", (data: { y: number }) => {
        const top = (this.box as unknown as { lpos?: { yi: number } }).lpos?.yi;
        if (top === undefined) return;
        const row = data.y - top - (this.bordered ? 1 : 0) - this.headerRows;
        if (row >= 0) mouse.click(this.drawnFrom + row);
      });
      this.box.on("wheeldown", () => mouse.wheel(3));
      this.box.on("wheelup", () => mouse.wheel(-3));
    }
  }

  /** Cells across the inside of the table. */
  get width(): number {
    return Math.max(1, Number(this.box.width) - (this.bordered ? 2 : 0));
  }

  private get inner(): number {
    return Math.max(1, Number(this.box.height) - (this.bordered ? 2 : 0));
  }

  /** Rows of data that fit. */
  get pageSize(): number {
    return Math.max(1, this.inner - 1);
  }

  setLabel(text: string): void {
    if (this.bordered) this.box.setLabel(` ${text} `);
  }

  draw(src: TableSource): void {
    const height = Math.max(1, this.inner - (src.header ? 1 : 0));
    src.cursor.clamp(src.count, height);
    this.drawnFrom = src.cursor.offset;
    this.headerRows = src.header ? 1 : 0;
    const out: string[] = [];
    if (src.header) out.push(toTags(src.header, this.color));
    if (src.count === 0 && src.empty) out.push(toTags(src.empty, this.color));
    const end = Math.min(src.count, src.cursor.offset + height);
    for (let i = src.cursor.offset; i < end; i++) {
      const row = src.row(i);
      const selected = i === src.cursor.index && src.highlight !== false;
      out.push(toTags(selected ? inverse(padded(row, this.width)) : row, this.color));
    }
    this.box.setContent(out.join("\n"));
  }

  destroy(): void {
    this.box.destroy();
  }
}

/** The selected row reaches across the table, so the highlight is a bar rather than ragged text. */
function padded(row: Line, width: number): Line {
  let used = 0;
  for (const s of row) used += displayWidth(s.text);
  return used >= width ? row : [...row, { text: " ".repeat(width - used) }];
}

/** Static lines in a box (summaries, details). */
export class TextWidget {
  private readonly box: blessed.Widgets.BoxElement;

  constructor(
    parent: Region,
    pos: Pos,
    private readonly color: Palette,
    opts: { label?: string; border?: boolean } = {},
  ) {
    this.box = blessed.box({
      parent,
      ...pos,
      tags: true,
      wrap: false,
      ...(opts.border ? { border: "line" as const } : {}),
      ...(opts.label ? { label: ` ${opts.label} ` } : {}),
    });
  }

  get height(): number {
    return Number(this.box.height);
  }

  get width(): number {
    return Number(this.box.width);
  }

  setLines(lines: readonly Line[]): void {
    this.box.setContent(lines.map((l) => toTags(l, this.color)).join("\n"));
  }

  destroy(): void {
    this.box.destroy();
  }
}
