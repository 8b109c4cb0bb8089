import type { Line, Palette } from "../render/style.ts";
import { sanitize } from "../render/text.ts";

function escapeTags(text: string): string {
  return text.replace(/[{}]/g, (c) => (c === "{" ? "{open}" : "{close}"));
}

/**
 * A styled line as blessed tag markup; without colour only bold and inverse remain. Grey is colour 8,
 * which an eight-colour terminal folds into black (invisible on a dark background): there it is left
 * in the terminal's own foreground colour.
 */
export function toTags(line: Line, color: Palette): string {
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
    if (color && s.color && (s.color !== "gray" || color >= 16)) {
      open += `{${s.color}-fg}`;
      close = `{/${s.color}-fg}${close}`;
    }
    // The last guard: whatever a render function forgot to clean never reaches the terminal raw.
    out += open + escapeTags(sanitize(s.text)) + close;
  }
  return out;
}

/** The same line, every segment shown inverse (the selected row). */
export function inverse(line: Line): Line {
  return line.map((s) => ({ ...s, inverse: true }));
}
