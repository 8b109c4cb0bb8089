import type { Color, Line, Seg } from "./style.ts";
import { displayWidth, fitText } from "./text.ts";

/** A table column: a fixed width, or a share of what the fixed ones leave (`flex`). */
export interface Column<T> {
  title: string;
  width: number;
  flex?: number;
  align?: "left" | "right";
  cell(row: T): Seg | string;
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
  if (flexTotal > 0 && spare > 0) {
    let given = 0;
    columns.slice(0, shown).forEach((c, i) => {
      if (!c.flex) return;
      const extra = Math.floor((spare * c.flex) / flexTotal);
      out[i] = (out[i] ?? 0) + extra;
      given += extra;
    });
    spare -= given;
    const lastFlex = columns.slice(0, shown).findLastIndex((c) => (c.flex ?? 0) > 0);
    if (lastFlex >= 0) out[lastFlex] = (out[lastFlex] ?? 0) + spare;
  }
  if (shown === 1 && out[0] !== undefined) out[0] = Math.min(out[0], total);
  return out;
}

function asSeg(cell: Seg | string): Seg {
  return typeof cell === "string" ? { text: cell } : cell;
}

/** One row: each cell cut or padded to its column's width, columns one space apart. */
export function tableRow<T>(columns: readonly Column<T>[], widths: readonly number[], row: T): Line {
  const line: Line = [];
  widths.forEach((w, i) => {
    const col = columns[i];
    if (!col) return;
    const cell = asSeg(col.cell(row));
    const s: Seg = { ...cell, text: fitText(cell.text, w, col.align) };
    if (i > 0) line.push({ text: GAP });
    line.push(s);
  });
  return line;
}

export function tableHeader<T>(
  columns: readonly Column<T>[],
  widths: readonly number[],
  color?: Color,
): Line {
  const text = widths.map((w, i) => fitText(columns[i]?.title ?? "", w, columns[i]?.align)).join(GAP);
  return [{ text, bold: true, ...(color ? { color } : {}) }];
}

/** A `label value` pair list laid out in aligned columns (for detail panes). */
export function fieldLines(fields: readonly [string, Seg | string][]): Line[] {
  const labelWidth = Math.max(0, ...fields.map(([l]) => displayWidth(l)));
  return fields.map(([label, value]) => [
    { text: `${label.padEnd(labelWidth)}  `, bold: true },
    asSeg(value),
  ]);
}
