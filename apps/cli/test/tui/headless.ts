import { PassThrough, Writable } from "node:stream";
import xterm from "@xterm/headless";

/**
 * A terminal in memory: blessed writes into `output`, @xterm/headless interprets it as a real
 * terminal would, and `lines()` reads the screen back. Keys go in through `press()`.
 */
export class HeadlessTerminal {
  readonly term: xterm.Terminal;
  readonly input: PassThrough & { isTTY: boolean; setRawMode(mode: boolean): void };
  readonly output: Writable & { columns: number; rows: number; isTTY: boolean };
  /** Every byte written, for checks on what was sent (colours, escapes). */
  written = "";

  constructor(cols = 160, rows = 48) {
    this.term = new xterm.Terminal({ cols, rows, allowProposedApi: true });
    const input = new PassThrough() as HeadlessTerminal["input"];
    input.isTTY = true;
    input.setRawMode = () => {};
    this.input = input;
    const out = new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        const text = chunk.toString();
        this.written += text;
        this.term.write(text, () => cb());
      },
    }) as HeadlessTerminal["output"];
    out.columns = cols;
    out.rows = rows;
    out.isTTY = true;
    this.output = out;
  }

  /** Waits until the terminal has taken in everything written so far. */
  flush(): Promise<void> {
    return new Promise((resolve) => this.term.write("", resolve));
  }

  lines(): string[] {
    const buf = this.term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < this.term.rows; i++)
      out.push(buf.getLine(buf.viewportY + i)?.translateToString(true) ?? "");
    return out;
  }

  text(): string {
    return this.lines().join("\n");
  }

  /** Types keys: plain text, or escapes such as "\r" (Enter), "\x1b" (Esc), "\x0c" (Ctrl-L). */
  press(keys: string): void {
    this.input.write(keys);
  }

  resize(cols: number, rows: number): void {
    this.term.resize(cols, rows);
    this.output.columns = cols;
    this.output.rows = rows;
    this.output.emit("resize");
  }

  /**
   * The selected row of a list: the first line between the title and the status bar drawn inverse
   * across to its far end (a search match is inverse too, but only where it matches).
   */
  selectedLine(): string | null {
    const buf = this.term.buffer.active;
    const cell = buf.getNullCell();
    for (let y = 1; y < this.term.rows - 1; y++) {
      const line = buf.getLine(buf.viewportY + y);
      if (!line) continue;
      line.getCell(this.term.cols - 2, cell);
      if (cell.isInverse()) return line.translateToString(true);
    }
    return null;
  }

  /** Whether any cell on screen has a colour other than the terminal's default. */
  anyColour(): boolean {
    const buf = this.term.buffer.active;
    const cell = buf.getNullCell();
    for (let y = 0; y < this.term.rows; y++) {
      const line = buf.getLine(buf.viewportY + y);
      if (!line) continue;
      for (let x = 0; x < this.term.cols; x++) {
        line.getCell(x, cell);
        if (!cell.isFgDefault() || !cell.isBgDefault()) return true;
      }
    }
    return false;
  }

  dispose(): void {
    this.term.dispose();
  }
}
