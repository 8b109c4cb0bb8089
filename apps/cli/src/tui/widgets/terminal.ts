import blessed from "blessed";

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

/**
 * The blessed screen: the terminal in raw mode on the alternate screen, keys delivered by name,
 * resizes reported, and put back as it was by `destroy()` whatever else happened.
 */
export class Terminal {
  readonly screen: blessed.Widgets.Screen;
  private destroyed = false;

  constructor(opts: TerminalOptions = {}) {
    const screenOptions = {
      input: opts.input,
      output: opts.output,
      terminal: opts.terminal ?? process.env.TERM ?? "xterm-256color",
      smartCSR: true,
      fullUnicode: true,
      autoPadding: true,
      warnings: false,
      dockBorders: true,
      title: "skiff",
    };
    this.screen = blessed.screen(screenOptions as unknown as blessed.Widgets.IScreenOptions);
    // On a UTF-8 terminal, draw borders as Unicode box characters rather than through the VT100
    // alternate character set, which some terminals, multiplexers and screen captures get wrong.
    const tput = (this.screen.program as unknown as { tput: { unicode: boolean; brokenACS: boolean } }).tput;
    if (tput.unicode) tput.brokenACS = true;
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
