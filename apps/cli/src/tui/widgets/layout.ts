import blessed from "blessed";
import type { Line, Palette } from "../render/style.ts";
import { toTags } from "./markup.ts";
import type { Terminal } from "./terminal.ts";

/** A place on screen that views put widgets in. */
export type Region = blessed.Widgets.BoxElement;

/** Where a widget sits in its region: cells, or blessed's `50%` / `100%-2` forms. */
export interface Pos {
  top: number | string;
  left: number | string;
  width: number | string;
  height: number | string;
}

function line(parent: blessed.Widgets.Node, pos: { top?: number; bottom?: number }, style = {}) {
  return blessed.box({ parent, left: 0, width: "100%", height: 1, tags: true, wrap: false, ...pos, style });
}

/**
 * The frame around every view: a title line at the top, the view's region, a footer line (key hints,
 * or the prompt while one is open) and the status bar at the bottom, and an overlay for help.
 */
export class Chrome {
  readonly body: Region;
  private readonly header: blessed.Widgets.BoxElement;
  private readonly footer: blessed.Widgets.BoxElement;
  private readonly status: blessed.Widgets.BoxElement;
  private overlay: blessed.Widgets.BoxElement | null = null;

  constructor(
    private readonly term: Terminal,
    private readonly color: Palette,
  ) {
    const screen = term.screen;
    this.header = line(screen, { top: 0 }, { inverse: true });
    this.body = blessed.box({ parent: screen, top: 1, left: 0, width: "100%", height: "100%-3" });
    this.footer = line(screen, { bottom: 1 });
    this.status = line(screen, { bottom: 0 }, { inverse: true });
  }

  setHeader(l: Line): void {
    this.header.setContent(toTags(l, this.color));
  }

  setFooter(l: Line): void {
    this.footer.setContent(toTags(l, this.color));
  }

  setStatus(l: Line): void {
    this.status.setContent(toTags(l, this.color));
  }

  /** Shows `lines` in a box over the view, from line `scroll`; returns how many lines fit. */
  showOverlay(title: string, lines: readonly Line[], scroll: number): number {
    if (!this.overlay)
      this.overlay = blessed.box({
        parent: this.term.screen,
        top: "center",
        left: "center",
        width: "80%",
        height: "80%",
        border: "line",
        tags: true,
        wrap: false,
        label: ` ${title} `,
      });
    this.overlay.setLabel(` ${title} `);
    const fits = Math.max(1, Number(this.overlay.height) - 2);
    this.overlay.setContent(
      lines
        .slice(scroll, scroll + fits)
        .map((l) => toTags(l, this.color))
        .join("\n"),
    );
    this.overlay.setFront();
    return fits;
  }

  hideOverlay(): void {
    this.overlay?.destroy();
    this.overlay = null;
  }

  get width(): number {
    return this.term.cols;
  }
}
