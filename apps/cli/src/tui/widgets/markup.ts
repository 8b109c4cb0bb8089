import type { Line, Palette } from "../render/style.ts";
import { charWidth, sanitize } from "../render/text.ts";

/**
 * Set where the locale is not UTF-8: the console's own symbols (which the terminal layer maps to
 * ASCII) are kept, and any other non-ASCII character (a CJK name, an emoji, an accent) is drawn as as
 * many `?` as the cells it was measured to take, so every column stays where the layout put it.
 * Null on a UTF-8 terminal.
 */
let asciiKeeps: ReadonlySet<string> | null = null;

export function drawAsciiOnly(keep: Iterable<string> | null): void {
  asciiKeeps = keep === null ? null : new Set(keep);
}

function foldToAscii(text: string, keep: ReadonlySet<string>): string {
  // Sanitised text has no control characters: printable ASCII is all there is to pass through.
  if (/^[ -~]*$/.test(text)) return text;
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    out += cp < 0x7f || keep.has(ch) ? ch : "?".repeat(charWidth(cp));
  }
  return out;
}

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
    const text = sanitize(s.text);
    out += open + escapeTags(asciiKeeps ? foldToAscii(text, asciiKeeps) : text) + close;
  }
  return out;
}

/** The same line, every segment shown inverse (the selected row). */
export function inverse(line: Line): Line {
  return line.map((s) => ({ ...s, inverse: true }));
}
