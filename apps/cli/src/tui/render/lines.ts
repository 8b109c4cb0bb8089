import type { Line, Seg } from "./style.ts";
import { charWidth, displayWidth } from "./text.ts";

/** The cells of a styled line from column `from` up to (not including) `to`, styles kept. */
export function sliceLine(line: Line, from: number, to: number): Line {
  const out: Line = [];
  let col = 0;
  for (const s of line) {
    if (col >= to) break;
    let text = "";
    for (const ch of s.text) {
      const w = charWidth(ch.codePointAt(0) ?? 0);
      // A wide character that would straddle an edge is left out rather than cut in half.
      if (col >= from && col + w <= to) text += ch;
      col += w;
      if (col >= to) break;
    }
    if (text !== "") out.push({ ...s, text });
  }
  return out;
}

export function lineWidth(line: Line): number {
  let w = 0;
  for (const s of line) w += displayWidth(s.text);
  return w;
}

const MORE: Seg = { text: "…", color: "gray" };

/**
 * What fits of a line in `width` cells when it is scrolled `from` columns to the right: a `…` at
 * either end that has more beyond it, so a cut line never passes for a whole one.
 */
export function clipLine(line: Line, from: number, width: number): Line {
  const total = lineWidth(line);
  if (from <= 0 && total <= width) return line;
  // Scrolled past its end, a line shows its tail; one that fits is shown whole.
  const start = Math.max(0, Math.min(from, total - width));
  const left = start > 0;
  const right = total > start + width;
  const inner = width - (left ? 1 : 0) - (right ? 1 : 0);
  const body = sliceLine(line, start + (left ? 1 : 0), start + (left ? 1 : 0) + Math.max(0, inner));
  return [...(left ? [MORE] : []), ...body, ...(right ? [MORE] : [])];
}

/** A line cut into rows of `width` cells; continuation rows are marked with `↪ ` (none is lost). */
export function wrapLine(line: Line, width: number): Line[] {
  const total = lineWidth(line);
  if (total <= width || width < 4) return [line];
  const rows: Line[] = [sliceLine(line, 0, width)];
  const step = width - 2;
  let at = lineWidth(rows[0] ?? []);
  while (at < total) {
    const part = sliceLine(line, at, at + step);
    const used = lineWidth(part);
    rows.push([{ text: "↪ ", color: "gray" }, ...part]);
    at += used > 0 ? used : step;
  }
  return rows;
}

/**
 * The line with every case-insensitive occurrence of `needle` marked (inverse, yellow), for search.
 * Matches are found in the line's whole text, so one that spans two styled pieces is marked too.
 */
export function highlight(line: Line, needle: string): Line {
  if (needle === "") return line;
  const text = line.map((s) => s.text).join("");
  const lower = text.toLowerCase();
  const want = needle.toLowerCase();
  const marks: [number, number][] = [];
  for (let i = lower.indexOf(want); i >= 0; i = lower.indexOf(want, i + Math.max(1, want.length)))
    marks.push([i, i + want.length]);
  if (marks.length === 0) return line;
  const out: Line = [];
  let pos = 0;
  let m = 0;
  for (const s of line) {
    const end = pos + s.text.length;
    let at = pos;
    while (at < end) {
      while (m < marks.length && (marks[m]?.[1] ?? 0) <= at) m++;
      const mark = marks[m];
      if (!mark || mark[0] >= end) {
        out.push({ ...s, text: text.slice(at, end) });
        at = end;
      } else if (mark[0] > at) {
        out.push({ ...s, text: text.slice(at, mark[0]) });
        at = mark[0];
      } else {
        const stop = Math.min(mark[1], end);
        out.push({ ...s, text: text.slice(at, stop), inverse: true, color: "yellow" });
        at = stop;
      }
    }
    pos = end;
  }
  return out;
}
