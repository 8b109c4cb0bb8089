import type { Line } from "../render/style.ts";

function escapeTags(text: string): string {
  return text.replace(/[{}]/g, (c) => (c === "{" ? "{open}" : "{close}"));
}

/** A styled line as blessed tag markup; without colour only bold and inverse remain. */
export function toTags(line: Line, color: boolean): string {
  let out = "";
  for (const s of line) {
    let open = "";
    let close = "";
    if (s.bold) {
      open += "{bold}";
      close = `{/bold}${close}`;
    }
    if (s.inverse) {
      open += "{inverse}";
      close = `{/inverse}${close}`;
    }
    if (color && s.color) {
      const c = s.color === "gray" ? "gray" : s.color;
      open += `{${c}-fg}`;
      close = `{/${c}-fg}${close}`;
    }
    out += open + escapeTags(s.text) + close;
  }
  return out;
}

/** The same line, every segment shown inverse (the selected row). */
export function inverse(line: Line): Line {
  return line.map((s) => ({ ...s, inverse: true }));
}
