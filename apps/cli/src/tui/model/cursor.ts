/**
 * The selected row of a list and the first row shown, kept apart from the widget so a list of any
 * length costs only the rows on screen. With `follow` (a live log), the selection stays on the last
 * row as rows arrive until the user moves up.
 */
export class Cursor {
  index = 0;
  offset = 0;

  constructor(public follow = false) {}

  /** Keeps the selection inside `count` rows and on screen in a window of `height` rows. */
  clamp(count: number, height: number): void {
    if (this.follow) this.index = count - 1;
    this.index = Math.max(0, Math.min(this.index, count - 1));
    const h = Math.max(1, height);
    if (this.index < this.offset) this.offset = this.index;
    if (this.index >= this.offset + h) this.offset = this.index - h + 1;
    this.offset = Math.max(0, Math.min(this.offset, Math.max(0, count - h)));
  }

  move(delta: number, count: number): void {
    this.index = Math.max(0, Math.min(this.index + delta, count - 1));
    this.follow = this.follow && delta > 0 && this.index === count - 1;
  }

  top(): void {
    this.index = 0;
    this.follow = false;
  }

  bottom(count: number, follow = false): void {
    this.index = Math.max(0, count - 1);
    this.follow = follow;
  }

  /** Puts the selection on the row for which `match` holds, if there is one. */
  seek<T>(rows: readonly T[], match: (row: T) => boolean): void {
    const i = rows.findIndex(match);
    if (i >= 0) this.index = i;
  }
}
