import blessed from "blessed";
import type { Palette } from "../render/style.ts";
import { drawAsciiOnly } from "./markup.ts";

export interface TerminalOptions {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** The terminfo name; TERM when unset. */
  terminal?: string;
}

/** A key as the rest of the console names it: the character typed, or `enter`, `escape`, `C-l`, `up`. */
export function keyName(
  ch: string | undefined,
  key: { name?: string; ctrl?: boolean; meta?: boolean } | undefined,
): string | null {
  const name = key?.name;
  // "\r" arrives twice from blessed, as `enter` and as `return`: take one.
  if (name === "return") return null;
  if (name === "linefeed") return "enter";
  if (key?.ctrl && name) return `C-${name}`;
  if (key?.meta) return null;
  if (ch !== undefined && ch.length === 1 && ch >= " " && ch !== "\x7f") return ch;
  return name ?? null;
}

const WIDE_COLOURS = /-(256colou?r|direct)$/;

/**
 * The terminfo entry the console draws with. blessed cannot compile tmux's and screen's entries (it
 * falls back to an eight-colour xterm, where grey becomes black, or prints a parse error over the
 * screen); both understand xterm's sequences, so they are drawn with xterm's entry of the same depth.
 */
export function drawingTerminal(term: string | undefined): string {
  if (!term) return "xterm-256color";
  if (/^(tmux|screen)([.-]|$)/.test(term)) return WIDE_COLOURS.test(term) ? "xterm-256color" : "xterm";
  return term;
}

/** The colours a terminal's name (or COLORTERM) promises, which blessed's fallback entry may not know. */
export function promisedColors(term: string | undefined, colorterm: string | undefined): number {
  if (/^(truecolor|24bit)$/i.test(colorterm ?? "") || WIDE_COLOURS.test(term ?? "")) return 256;
  if (/-16colou?r$/.test(term ?? "")) return 16;
  return 0;
}

/** The palette for a number of colours: none below eight (vt100), where colour names would mislead. */
export function paletteOf(colors: number): Palette {
  if (colors >= 256) return 256;
  if (colors >= 16) return 16;
  if (colors >= 8) return 8;
  return 0;
}

/**
 * What the console's own symbols become where the locale is not UTF-8 (LANG=C over SSH): one ASCII
 * character each, so columns keep their widths. blessed already maps the box-drawing characters.
 */
const ASCII_GLYPHS: Record<string, string> = {
  "✓": "+",
  "✗": "x",
  "·": ".",
  "→": ">",
  "←": "<",
  "↑": "^",
  "↓": "v",
  "▶": ">",
  "■": "#",
  "⊘": "/",
  "●": "*",
  "◌": "o",
  "○": "o",
  "…": "~",
  "│": "|",
  "─": "-",
  "═": "=",
  "⚠": "!",
  "█": "#",
  "░": "-",
  "×": "x",
  "≤": "<",
  "≠": "!",
  "↪": ">",
};

/** The ASCII for braille dots (blessed-contrib's line charts): a dot where any is set. */
function brailleToAscii(table: Record<string, string>): void {
  table[String.fromCharCode(0x2800)] = " ";
  for (let c = 0x2801; c <= 0x28ff; c++) table[String.fromCharCode(c)] = ".";
}

/**
 * The blessed screen: the terminal in raw mode on the alternate screen, keys delivered by name,
 * resizes reported, and put back as it was by `destroy()` whatever else happened.
 */
export class Terminal {
  readonly screen: blessed.Widgets.Screen;
  /** The colours the console uses here (0: none, as on a vt100). */
  readonly palette: Palette;
  /** Whether the locale is UTF-8; without it every symbol and border is drawn in ASCII. */
  readonly unicode: boolean;
  private destroyed = false;

  constructor(opts: TerminalOptions = {}) {
    const requested = opts.terminal ?? process.env.TERM;
    const screenOptions = {
      input: opts.input,
      output: opts.output,
      terminal: drawingTerminal(requested),
      smartCSR: true,
      fullUnicode: true,
      autoPadding: true,
      warnings: false,
      dockBorders: true,
      title: "skiff",
    };
    this.screen = blessed.screen(screenOptions as unknown as blessed.Widgets.IScreenOptions);
    const tput = (
      this.screen.program as unknown as {
        tput: { unicode: boolean; brokenACS: boolean; colors: number; utoa: Record<string, string> };
      }
    ).tput;
    // A name that promises 256 colours gets them, whatever entry blessed could load for it.
    tput.colors = Math.max(tput.colors, promisedColors(requested, process.env.COLORTERM));
    this.palette = paletteOf(tput.colors);
    this.unicode = tput.unicode;
    // Never the VT100 alternate character set, which some terminals, multiplexers and screen captures
    // get wrong (`lqqqk` for a border): Unicode box characters on a UTF-8 terminal, ASCII elsewhere.
    tput.brokenACS = true;
    if (!tput.unicode) {
      for (const [from, to] of Object.entries(ASCII_GLYPHS)) tput.utoa[from] = to;
      brailleToAscii(tput.utoa);
    }
    drawAsciiOnly(tput.unicode ? null : Object.keys(ASCII_GLYPHS));
  }

  onKey(fn: (key: string, ch: string | undefined) => void): void {
    this.screen.on(
      "keypress",
      (ch: string | undefined, key: { name?: string; ctrl?: boolean; meta?: boolean }) => {
        const name = keyName(ch, key);
        if (name !== null) fn(name, ch);
      },
    );
  }

  onResize(fn: () => void): void {
    this.screen.on("resize", fn);
  }

  get cols(): number {
    return Number(this.screen.width);
  }

  get rows(): number {
    return Number(this.screen.height);
  }

  render(): void {
    if (!this.destroyed) this.screen.render();
  }

  /** Forgets what is on the terminal and draws everything again (Ctrl-L after line noise). */
  redrawAll(): void {
    if (this.destroyed) return;
    this.screen.realloc();
    this.screen.render();
  }

  /** Leaves the alternate screen, shows the cursor, ends raw mode. Safe to call more than once. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const input = this.screen.program.input as NodeJS.ReadableStream & { unref?: () => void };
    this.screen.destroy();
    // blessed pauses the input but leaves its reader attached: let go of it so the process can end.
    input.pause();
    input.unref?.();
  }
}
