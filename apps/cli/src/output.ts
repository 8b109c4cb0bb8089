/**
 * How the scripting commands print: aligned plain-text tables, human durations and ages, colour only
 * on a terminal without NO_COLOR, and the API objects unchanged under `--json`.
 */

type Stream = NodeJS.WriteStream;

/** Colour is for people at a terminal: never in a pipe, a file, or with NO_COLOR set (any value). */
export function colorOn(stream: Stream): boolean {
  return Boolean(stream.isTTY) && process.env.NO_COLOR === undefined && process.env.TERM !== "dumb";
}

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39] } as const;
export type Style = keyof typeof CODES;

export function paint(stream: Stream, style: Style, text: string): string {
  if (!colorOn(stream)) return text;
  const [open, close] = CODES[style];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}

/** The width a terminal gives `text`, ignoring colour escapes. */
function visibleLength(text: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching the escapes paint() writes
  return text.replace(/\u001b\[\d+m/g, "").length;
}

/**
 * Lines for the user. On a terminal, what came from the API (a job's name, an error's words, any
 * of which a job's author chose) is shown, not obeyed: see `terminalSafe`.
 */
export function out(line = ""): void {
  process.stdout.write(`${process.stdout.isTTY ? terminalSafe(line) : line}\n`);
}

export function err(line = ""): void {
  process.stderr.write(`${process.stderr.isTTY ? terminalSafe(line) : line}\n`);
}

/** Pretty JSON for one object (a `get`), the form scripts pipe into `jq`. */
export function printJson(value: unknown): void {
  out(JSON.stringify(value, null, 2));
}

/**
 * Prints rows as columns separated by two spaces, the header first; the last column is not padded.
 * Cells may carry colour (from `paint`); alignment ignores the escapes.
 */
export function printTable(headers: string[], rows: string[][], empty = "(none)"): void {
  if (rows.length === 0) {
    err(empty);
    return;
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ""))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - visibleLength(c))))
      .join("  ")
      .trimEnd();
  out(paint(process.stdout, "bold", line(headers)));
  for (const row of rows) out(line(row));
}

/** Key-value lines for a single object, keys aligned. */
export function printFields(fields: [string, string][]): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  for (const [k, v] of fields) out(`${`${k}:`.padEnd(width + 1)}  ${v}`);
}

/** "850ms", "3s", "2m 5s", "1h 4m", "3d 2h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 === 0 ? `${h}h` : `${h}h ${m % 60}m`;
  const d = Math.floor(h / 24);
  return h % 24 === 0 ? `${d}d` : `${d}d ${h % 24}h`;
}

/** How long ago an ISO time was: "3s ago", "2m ago"; "-" for none. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const ms = now - t;
  if (ms < 1000) return "just now";
  return `${formatDuration(ms).split(" ")[0]} ago`;
}

/** The time between two ISO instants (the second defaulting to now), or "-". */
export function between(from: string | null | undefined, to: string | null | undefined): string {
  if (!from) return "-";
  const end = to ? Date.parse(to) : Date.now();
  return formatDuration(end - Date.parse(from));
}

/** Job and agent states coloured by what they mean to an operator. */
export function stateCell(stream: Stream, state: string): string {
  if (state === "succeeded" || state === "online" || state === "ok" || state === "idle")
    return paint(stream, "green", state);
  if (["failed", "timed_out", "offline", "error", "denied", "degraded"].includes(state))
    return paint(stream, "red", state);
  if (["canceled", "canceling", "draining"].includes(state)) return paint(stream, "yellow", state);
  return state;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: a colour sequence is what is kept
const SGR = /^\x1b\[[0-9;:]*m/;

/**
 * A job's line made safe to print on the user's terminal: colours (SGR) are kept, and reset at the
 * end of the text so they never bleed into what follows; line breaks and tabs stay; every other
 * escape sequence and control character is shown (`^[`, `^G`, `^M`) instead of acted on, so a job cannot set the window title,
 * write the clipboard (OSC 52), move the cursor or overwrite a line it printed before.
 */
export function terminalSafe(text: string): string {
  let out = "";
  let coloured = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x1b) {
      const sgr = SGR.exec(text.slice(i, i + 64));
      if (sgr) {
        out += sgr[0];
        coloured = true;
        i += sgr[0].length - 1;
      } else out += "^[";
    } else if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || c === 0x7f)
      out += c === 0x7f ? "^?" : `^${String.fromCharCode(c + 64)}`;
    // C1 controls: an 8-bit CSI (U+009B) is an escape sequence to some terminals.
    else if (c >= 0x80 && c <= 0x9f) out += "\uFFFD";
    else out += text[i];
  }
  return coloured ? `${out}\x1b[0m` : out;
}
