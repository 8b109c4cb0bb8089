/**
 * Draws at most `maxFps` frames a second, and only when something asked for one: a flood of events
 * becomes ten frames a second, silence becomes none.
 */
export class FrameScheduler {
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private stopped = false;
  frames = 0;
  /** Milliseconds the last frame took to draw. */
  lastFrameMs = 0;

  constructor(
    private readonly draw: () => void,
    private readonly maxFps = 10,
  ) {}

  request(): void {
    if (this.timer || this.stopped) return;
    const wait = Math.max(0, this.last + 1000 / this.maxFps - Date.now());
    this.timer = setTimeout(() => this.frame(), wait);
  }

  /** Draws now (first frame, Ctrl-L, tests). */
  now(): void {
    clearTimeout(this.timer);
    this.frame();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private frame(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const start = performance.now();
    this.last = Date.now();
    this.draw();
    this.frames++;
    this.lastFrameMs = performance.now() - start;
  }
}
