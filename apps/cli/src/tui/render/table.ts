import type { Color, Line, Seg } from "./style.ts";
import { displayWidth, fitText, sanitize } from "./text.ts";

/** A table column: a fixed width, or a share of what the fixed ones leave (`flex`). */
export interface Column<T> {
  title: string;
  width: number;
  flex?: number;
  /** The most a flex column grows to; what it would take beyond goes to the other flex columns. */
  max?: number;
  align?: "left" | "right";
  cell(row: T): Seg | string;
  /** The value rows are ordered by when the table is sorted on this column. */
  sort?: (row: T) => string | number;
  /** The sort value moves with the clock (a running job's time so far): re-sorted once a second. */
  live?: boolean;
}

const GAP = " ";

/**
 * Column widths for a total width: fixed columns keep theirs while they fit, flex columns share the
 * rest in proportion to `flex` (at least their `width`); when even that does not fit, columns from
 * the right are dropped rather than everything squeezed into nonsense.
 */
export function columnWidths<T>(columns: readonly Column<T>[], total: number): number[] {
  const widths = columns.map((c) => c.width);
  let shown = columns.length;
  const used = (n: number) => widths.slice(0, n).reduce((a, b) => a + b, 0) + Math.max(0, n - 1) * GAP.length;
  while (shown > 1 && used(shown) > total) shown--;
  const out = widths.slice(0, shown);
  const flexTotal = columns.slice(0, shown).reduce((a, c) => a + (c.flex ?? 0), 0);
  let spare = total - used(shown);
  // Flex columns share the spare by `flex`; one that reaches its `max` stops, and the others share
  // what it left, until every flex column is full or nothing is left (then the rest stays blank).
  const open = new Set(columns.slice(0, shown).flatMap((c, i) => ((c.flex ?? 0) > 0 ? [i] : [])));
  while (flexTotal > 0 && spare > 0 && open.size > 0) {
    const share = [...open].reduce((a, i) => a + (columns[i]?.flex ?? 0), 0);
    let given = 0;
    for (const i of open) {
      const c = columns[i] as Column<T>;
      const room = c.max === undefined ? Number.POSITIVE_INFINITY : c.max - (out[i] ?? 0);
      const extra = Math.min(room, Math.floor((spare * (c.flex ?? 0)) / share));
      out[i] = (out[i] ?? 0) + extra;
      given += extra;
      if (extra >= room) open.delete(i);
    }
    if (given === 0) {
      // Less spare than flex columns: the last open one takes the remainder (within its max).
      const last = [...open].at(-1) as number;
      const c = columns[last] as Column<T>;
      const room = c.max === undefined ? spare : Math.min(spare, c.max - (out[last] ?? 0));
      out[last] = (out[last] ?? 0) + room;
      break;
    }
    spare -= given;
  }
  if (shown === 1 && out[0] !== undefined) out[0] = Math.min(out[0], total);
  return out;
}

function asSeg(cell: Seg | string): Seg {
  return typeof cell === "string" ? { text: cell } : cell;
}

function cleanSeg(cell: Seg | string): Seg {
  const s = asSeg(cell);
  return { ...s, text: sanitize(s.text) };
}

/** One row: each cell cut or padded to its column's width, columns one space apart. */
export function tableRow<T>(columns: readonly Column<T>[], widths: readonly number[], row: T): Line {
  const line: Line = [];
  widths.forEach((w, i) => {
    const col = columns[i];
    if (!col) return;
    const cell = asSeg(col.cell(row));
    // Names and labels come from submitters and agents: cleaned before they are measured and cut.
    const s: Seg = { ...cell, text: fitText(sanitize(cell.text), w, col.align) };
    if (i > 0) line.push({ text: GAP });
    line.push(s);
  });
  return line;
}

export function tableHeader<T>(
  columns: readonly Column<T>[],
  widths: readonly number[],
  color?: Color,
  sorted?: { index: number; descending: boolean } | null,
): Line {
  const title = (i: number) => {
    const t = columns[i]?.title ?? "";
    return sorted?.index === i ? `${t}${sorted.descending ? "↓" : "↑"}` : t;
  };
  const text = widths.map((w, i) => fitText(title(i), w, columns[i]?.align)).join(GAP);
  return [{ text, bold: true, ...(color ? { color } : {}) }];
}

// One collator for every comparison: far cheaper than localeCompare with options on each call.
const COLLATOR = new Intl.Collator(undefined, { numeric: true });

/** Rows ordered by a column's sort value (stable: equal values keep their order). */
export function sortRows<T>(rows: readonly T[], column: Column<T>, descending: boolean): T[] {
  const key = column.sort;
  if (!key) return [...rows];
  const keyed = rows.map((row, i) => ({ row, i, k: key(row) }));
  keyed.sort((a, b) => {
    const c =
      typeof a.k === "number" && typeof b.k === "number"
        ? a.k - b.k
        : COLLATOR.compare(String(a.k), String(b.k));
    return (descending ? -c : c) || a.i - b.i;
  });
  return keyed.map((x) => x.row);
}

/** A `label value` pair list laid out in aligned columns (for detail panes). */
export function fieldLines(fields: readonly [string, Seg | string][]): Line[] {
  const labelWidth = Math.max(0, ...fields.map(([l]) => displayWidth(l)));
  return fields.map(([label, value]) => [
    { text: `${label.padEnd(labelWidth)}  `, bold: true },
    cleanSeg(value),
  ]);
}
