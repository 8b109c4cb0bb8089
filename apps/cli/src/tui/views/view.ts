import type { Backend } from "../data/backend.ts";
import type { KeyBinding } from "../model/keys.ts";
import type { PromptSpec } from "../model/prompt.ts";
import type { Stores, Sync } from "../model/sync.ts";
import type { HeartbeatPolicy } from "../render/heartbeat.ts";
import type { Line, Palette } from "../render/style.ts";
import type { Region } from "../widgets/layout.ts";
import type { Actions } from "./actions.ts";

export type ViewName = "overview" | "agents" | "jobs" | "log" | "job" | "fleet" | "audit";

/** What a view may use: its region of the screen, the stores, the actions and the app's services. */
export interface ViewContext {
  region: Region;
  color: Palette;
  /** Whether clicks and the wheel move the selection (`skiff tui --mouse`). */
  mouse: boolean;
  stores: Stores;
  sync: Sync;
  backend: Backend;
  policy: HeartbeatPolicy;
  actions: Actions;
  /** Switches to a view (pushed, so Esc comes back). */
  show(name: ViewName): void;
  /** Opens a job's log. */
  openJob(jobId: string): void;
  /** Opens a job's detail view. */
  openJobDetail(jobId: string): void;
  /** Opens a list view on top of this one with its filter set (Esc comes back here). */
  jump(name: "agents" | "jobs" | "audit", filter: string): void;
  requestRender(): void;
  prompt(spec: PromptSpec): void;
  /** Shows lines over the view until Esc (details, help). */
  overlay(title: string, lines: Line[]): void;
}

/**
 * A screen. `start()` puts its widgets in the region and subscribes to what it shows, and starts the
 * timers it owns; `stop()` undoes all of that. `draw()` only updates widgets: the app renders.
 */
export interface View {
  readonly name: ViewName;
  title(): Line;
  /** This view's key bindings (the app adds the global ones). */
  keys(): KeyBinding[];
  start(): void;
  stop(): void;
  draw(now: number): void;
  /** The `/` filter, for views that have one. */
  filter?: { get(): string; set(value: string): void; problem?(value: string): string | null };
}

/** A repeating timer that asks for a frame; started and stopped with its view. */
export class Ticker {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly fn: () => void,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(this.fn, this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
