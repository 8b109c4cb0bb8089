/**
 * Terminal text measuring and fitting: how many cells a string takes (wide East Asian characters and
 * most emoji take two, combining marks none), cutting to a width with an ellipsis, and making
 * program output safe to draw (no escape sequences, tabs or other control characters).
 */

function isZeroWidth(cp: number): boolean {
  return (
    (cp >= 0x0300 && cp <= 0x036f) ||
    (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    (cp >= 0xfe20 && cp <= 0xfe2f) ||
    cp === 0x200d
  );
}

function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f680 && cp <= 0x1f6ff) ||
    (cp >= 0x1f900 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** Cells one code point takes on a terminal. */
export function charWidth(cp: number): number {
  if (isZeroWidth(cp)) return 0;
  return isWide(cp) ? 2 : 1;
}

/** Cells a string takes on a terminal. */
export function displayWidth(text: string): number {
  let w = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Fast path for ASCII, which is nearly everything drawn.
    if (c < 0x7f) {
      w += 1;
      continue;
    }
    const cp = text.codePointAt(i) ?? c;
    if (cp > 0xffff) i++;
    w += charWidth(cp);
  }
  return w;
}

/**
 * Fits `text` into `width` cells: unchanged when it fits, else cut and ended with "…" (never cutting a
 * wide character in half: the cell it would leave is a space).
 */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (displayWidth(text) <= width) return text;
  let out = "";
  let used = 0;
  for (const ch of text) {
    const w = charWidth(ch.codePointAt(0) ?? 0);
    if (used + w > width - 1) break;
    out += ch;
    used += w;
  }
  return `${out}${" ".repeat(Math.max(0, width - 1 - used))}…`;
}

/** `text` fitted into exactly `width` cells: truncated, then padded on the right (or left). */
export function fitText(text: string, width: number, align: "left" | "right" = "left"): string {
  const cut = truncate(text, width);
  const pad = " ".repeat(Math.max(0, width - displayWidth(cut)));
  return align === "left" ? cut + pad : pad + cut;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching terminal escape sequences is the point
const ANSI = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

/**
 * Text from outside made safe to draw (program output, and every name, label, target or detail the
 * server hands on, which a submitter or an agent chose): escape sequences removed (a job's colours or
 * cursor moves must not move ours), tabs expanded, line breaks made spaces, other control characters
 * (C1 too: U+009B is an escape to some terminals) shown as `�`.
 */
export function sanitize(text: string): string {
  const noAnsi = text.includes("\x1b") ? text.replace(ANSI, "") : text;
  const tabs = noAnsi.includes("\t") ? noAnsi.replace(/\t/g, "    ") : noAnsi;
  const oneLine = /[\r\n]/.test(tabs) ? tabs.replace(/[\r\n]+/g, " ") : tabs;
  // Composed where a precomposed character exists (e + U+0301 is é); the zero-width characters left
  // (joiners, variation selectors, combining marks) are dropped: terminals and blessed disagree on
  // them as on emoji, and a row drawn one cell short leaves the last frame's text behind.
  const composed = /[^\p{ASCII}]/u.test(oneLine) ? oneLine.normalize("NFC").replace(ZERO_WIDTH, "") : oneLine;
  const clean = composed.replace(CONTROL, "\uFFFD");
  // Characters beyond the basic plane (emoji) are drawn at a width terminals and blessed disagree on,
  // which shifts everything after them on the row: shown as one replacement character instead.
  return ASTRAL.test(clean) ? clean.replace(ASTRAL_ALL, "\uFFFD") : clean;
}

// Combining marks and variation selectors (Mn, Me), and the zero-width spaces, joiners and marks.
const ZERO_WIDTH = /\p{Mn}|\p{Me}|[\u200b\u200c\u200e\u200f]|\u200d/gu;
const ASTRAL = /[\u{10000}-\u{10FFFF}]/u;
const ASTRAL_ALL = /[\u{10000}-\u{10FFFF}]/gu;
