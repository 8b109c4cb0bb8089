/**
 * Styled text as plain data: what the render functions return and the widgets turn into terminal
 * markup. Colours are the eight basic names every 16-colour terminal has; meaning never rests on
 * colour alone (each coloured cell also says what it means in words or a symbol).
 */
export type Color = "green" | "yellow" | "red" | "blue" | "cyan" | "magenta" | "gray" | "white";

/** How many colours the terminal shows: 0 for none (NO_COLOR, `--no-color`, vt100). */
export type Palette = 0 | 8 | 16 | 256;

export interface Seg {
  text: string;
  color?: Color;
  bold?: boolean;
  inverse?: boolean;
}

export type Line = Seg[];

export function seg(text: string, color?: Color, bold?: boolean): Seg {
  const s: Seg = { text };
  if (color) s.color = color;
  if (bold) s.bold = true;
  return s;
}

/** The text of a line without its styles. */
export function plain(line: Line): string {
  let out = "";
  for (const s of line) out += s.text;
  return out;
}
