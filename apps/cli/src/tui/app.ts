import { available, type CommandHost, completeCommand, runCommand } from "./commands.ts";
import type { Backend } from "./data/backend.ts";
import { AgentStore } from "./model/agents.ts";
import { AuditStore, FleetStore } from "./model/fleet.ts";
import { JobStore } from "./model/jobs.ts";
import { type KeyBinding, KeyMap } from "./model/keys.ts";
import { MetricsStore } from "./model/metrics.ts";
import { Prompt, type PromptSpec } from "./model/prompt.ts";
import { SessionStore } from "./model/session.ts";
import { type Stores, Sync } from "./model/sync.ts";
import { DEFAULT_HEARTBEAT_POLICY, type HeartbeatPolicy } from "./render/heartbeat.ts";
import { commandLines, FILTER_HELP, footerLine, helpLines } from "./render/help.ts";
import { promptLine } from "./render/prompt.ts";
import { statusLine } from "./render/status.ts";
import type { Line, Palette } from "./render/style.ts";
import { Actions } from "./views/actions.ts";
import { makeView } from "./views/registry.ts";
import type { View, ViewContext, ViewName } from "./views/view.ts";
import { FrameScheduler } from "./widgets/frames.ts";
import { Chrome } from "./widgets/layout.ts";
import { Terminal, type TerminalOptions } from "./widgets/terminal.ts";

export interface AppOptions {
  backend: Backend;
  readOnly: boolean;
  color: boolean;
  terminal?: TerminalOptions;
  policy?: HeartbeatPolicy;
  maxFps?: number;
  /**
   * Asked (y/N) before `q` quits, when quitting does more than close the console: under `skiff up`
   * it stops the whole node. Ctrl-C still quits at once.
   */
  confirmQuit?: string;
  /** `D` closes the console and leaves the process it belongs to running (`skiff up`). */
  detachable?: boolean;
  /** Clicks select rows and the wheel scrolls (it takes text selection away from the terminal). */
  mouse?: boolean;
}

interface Overlay {
  title: string;
  lines: Line[];
  scroll: number;
  fits: number;
}

/**
 * The console: stores kept live by `Sync`, a stack of views (Esc goes back), one key table for the
 * global and the current view's keys, the prompt line, the status bar, and frames drawn only when
 * something changed, at most ten a second.
 */
export class App {
  readonly stores: Stores;
  readonly keys: KeyMap;
  readonly sync: Sync;
  readonly actions: Actions;
  private term: Terminal | null = null;
  private chrome: Chrome | null = null;
  private frames: FrameScheduler | null = null;
  private readonly stack: View[] = [];
  /** Views opened by a jump, with the filter the jump gave them. */
  private readonly jumped = new WeakMap<View, string>();
  private prompt: Prompt | null = null;
  private overlayState: Overlay | null = null;
  private flashTimer: NodeJS.Timeout | undefined;
  private countdown: NodeJS.Timeout | undefined;
  private canChange = "";
  private palette: Palette = 0;
  private stopped = false;
  /** Closed with `D`: the process the console belongs to keeps running. */
  detached = false;
  private finish: () => void = () => {};
  /** Settles when the console has stopped (q, Ctrl-C, or `stop()`). */
  readonly done = new Promise<void>((resolve) => {
    this.finish = resolve;
  });

  constructor(private readonly opts: AppOptions) {
    this.stores = {
      session: new SessionStore(opts.backend.baseUrl, opts.readOnly),
      agents: new AgentStore(),
      jobs: new JobStore(),
      fleet: new FleetStore(),
      audit: new AuditStore(),
      metrics: new MetricsStore(),
    };
    this.keys = new KeyMap(() => this.stores.session.canChange());
    this.sync = new Sync(opts.backend, this.stores);
    this.actions = new Actions({
      backend: opts.backend,
      stores: this.stores,
      prompt: (spec) => this.openPrompt(spec),
      openJob: (id) => this.openJob(id),
    });
  }

  start(): void {
    const term = new Terminal(this.opts.terminal);
    this.term = term;
    this.palette = this.opts.color ? term.palette : 0;
    this.chrome = new Chrome(term, this.palette);
    this.frames = new FrameScheduler(() => this.draw(), this.opts.maxFps ?? 10);
    term.onKey((key, ch) => this.onKey(key, ch));
    term.onResize(() => this.requestRender());
    this.stores.session.subscribe(() => this.onSession());
    this.sync.start();
    this.show("overview");
    this.frames.now();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.frames?.stop();
    clearTimeout(this.flashTimer);
    clearInterval(this.countdown);
    this.current()?.stop();
    this.sync.stop();
    this.term?.destroy();
    this.finish();
  }

  requestRender = (): void => {
    this.frames?.request();
  };

  /** Draws a frame at once (tests and benchmarks). */
  renderNow(): void {
    this.frames?.now();
  }

  get lastFrameMs(): number {
    return this.frames?.lastFrameMs ?? 0;
  }

  get frameCount(): number {
    return this.frames?.frames ?? 0;
  }

  current(): View | undefined {
    return this.stack.at(-1);
  }

  show(name: ViewName): void {
    if (this.current()?.name === name) return;
    const at = this.stack.findIndex((v) => v.name === name);
    this.current()?.stop();
    if (at >= 0) this.stack.length = at + 1;
    else this.stack.push(makeView(name, this.viewContext()));
    this.current()?.start();
    this.rebind();
  }

  openJob(jobId: string): void {
    this.push("log", jobId);
  }

  openJobDetail(jobId: string): void {
    this.push("job", jobId);
  }

  /** A list view on top of the stack with its filter set, so Esc comes back to where the jump began. */
  jump(name: "agents" | "jobs" | "audit", filter: string): void {
    this.current()?.stop();
    const view = makeView(name, this.viewContext());
    view.filter?.set(filter);
    this.jumped.set(view, filter);
    this.stack.push(view);
    view.start();
    this.rebind();
  }

  private push(name: "log" | "job", jobId: string): void {
    const top = this.current();
    if (top?.name === name && "jobId" in top && top.jobId === jobId) return;
    top?.stop();
    const view = makeView(name, this.viewContext(), jobId);
    this.stack.push(view);
    view.start();
    this.rebind();
  }

  back(): void {
    if (this.stack.length <= 1) return;
    this.stack.pop()?.stop();
    this.current()?.start();
    this.rebind();
  }

  private viewContext(): ViewContext {
    const chrome = this.chrome;
    if (!chrome) throw new Error("the console has not started");
    return {
      region: chrome.body,
      color: this.palette,
      mouse: this.opts.mouse === true,
      stores: this.stores,
      sync: this.sync,
      backend: this.opts.backend,
      policy: this.opts.policy ?? DEFAULT_HEARTBEAT_POLICY,
      actions: this.actions,
      show: (name) => this.show(name),
      openJob: (id) => this.openJob(id),
      openJobDetail: (id) => this.openJobDetail(id),
      jump: (name, filter) => this.jump(name, filter),
      requestRender: this.requestRender,
      prompt: (spec) => this.openPrompt(spec),
      overlay: (title, lines) => this.openOverlay(title, lines),
    };
  }

  private globalKeys(): KeyBinding[] {
    const view = this.current();
    const keys: KeyBinding[] = [
      { key: ":", description: "command palette", hint: true, handler: () => this.openPalette() },
    ];
    if (view?.filter)
      keys.push({ key: "/", description: "filter", hint: true, handler: () => this.openFilter() });
    keys.push(
      { key: "?", description: "help: every key", hint: true, handler: () => this.openHelp() },
      { key: "escape", description: "clear the filter, or back", hint: true, handler: () => this.escape() },
      ...(this.opts.confirmQuit
        ? [
            {
              key: "q",
              description: "quit (asks first: it stops the node)",
              hint: true,
              handler: () => this.quit(),
            },
            { key: "C-c", description: "quit at once", handler: () => this.stop() },
          ]
        : [{ key: "q", aliases: ["C-c"], description: "quit", hint: true, handler: () => this.stop() }]),
      { key: "C-l", description: "redraw the screen", handler: () => this.term?.redrawAll() },
    );
    if (this.opts.detachable)
      keys.push({
        key: "D",
        description: "detach: close the console, the node keeps running (skiff tui attaches again)",
        hint: true,
        handler: () => this.detach(),
      });
    return keys;
  }

  private detach(): void {
    this.detached = true;
    this.stop();
  }

  private quit(): void {
    const question = `${this.opts.confirmQuit ?? "Quit?"}${this.opts.detachable ? " (D detaches instead)" : ""}`;
    this.openPrompt({
      kind: "confirm",
      question,
      onYes: () => this.stop(),
      onNo: () => this.stores.session.say("still running"),
      // What the question offers works in it too, not only once it has been answered.
      ...(this.opts.detachable ? { other: { key: "D", run: () => this.detach(), says: "to detach" } } : {}),
    });
  }

  private rebind(): void {
    const view = this.current();
    this.keys.set([
      {
        title: view ? `${view.name[0]?.toUpperCase()}${view.name.slice(1)} view` : "View",
        bindings: view?.keys() ?? [],
      },
      { title: "Everywhere", bindings: this.globalKeys() },
    ]);
    this.requestRender();
  }

  private onSession(): void {
    if (this.stopped) return;
    const { session } = this.stores;
    // Keys depend on what this token may do: rebind when that, or the role behind it, changes.
    const can = `${session.canChange()}|${session.who?.role ?? ""}`;
    if (can !== this.canChange) {
      this.canChange = can;
      this.rebind();
    }
    clearTimeout(this.flashTimer);
    if (session.flash)
      this.flashTimer = setTimeout(
        () => this.requestRender(),
        Math.max(0, session.flash.until - Date.now()) + 10,
      );
    const counting = session.connection.kind === "reconnecting" || session.connection.kind === "unauthorised";
    if (counting && !this.countdown) this.countdown = setInterval(this.requestRender, 1000);
    if (!counting && this.countdown) {
      clearInterval(this.countdown);
      this.countdown = undefined;
    }
    this.requestRender();
  }

  private onKey(key: string, ch: string | undefined): void {
    if (this.stopped) return;
    if (this.prompt) {
      const p = this.prompt;
      if (p.key(key, ch) === "done" && this.prompt === p) this.prompt = null;
      this.requestRender();
      return;
    }
    if (this.overlayState) this.overlayKey(key);
    else this.keys.dispatch(key);
  }

  private overlayKey(key: string): void {
    const o = this.overlayState;
    if (!o) return;
    const max = Math.max(0, o.lines.length - o.fits);
    const page = Math.max(1, o.fits - 1);
    // Reading keys scroll; any other key closes.
    if (key === "j" || key === "down") o.scroll = Math.min(max, o.scroll + 1);
    else if (key === "k" || key === "up") o.scroll = Math.max(0, o.scroll - 1);
    else if (key === "pagedown" || key === "C-f" || key === " " || key === "space" || key === "C-d")
      o.scroll = Math.min(max, o.scroll + page);
    else if (key === "pageup" || key === "C-b" || key === "C-u") o.scroll = Math.max(0, o.scroll - page);
    else if (key === "g" || key === "home") o.scroll = 0;
    else if (key === "G" || key === "end") o.scroll = max;
    else if (key === "C-c") {
      this.stop();
      return;
    } else {
      this.overlayState = null;
      this.chrome?.hideOverlay();
    }
    this.requestRender();
  }

  private escape(): void {
    const view = this.current();
    const f = view?.filter;
    // A view a jump opened came with its filter: Esc goes back to where the jump began, unless the
    // operator has changed the filter since (then it clears it, as anywhere else).
    if (f?.get() && !(view && this.jumped.get(view) === f.get())) f.set("");
    else this.back();
  }

  openPrompt(spec: PromptSpec): void {
    this.prompt = new Prompt(spec);
    this.requestRender();
  }

  openOverlay(title: string, lines: Line[]): void {
    this.overlayState = { title, lines, scroll: 0, fits: 1 };
    this.requestRender();
  }

  openHelp(): void {
    const commands = available(this.commandHost()).map((c) => ({
      name: `:${c.name}${c.args ? ` ${c.args}` : ""}`,
      description: c.description,
    }));
    this.openOverlay("keys (j/k, PgDn/PgUp scroll; Esc closes)", [
      ...helpLines(this.keys.bound()),
      [],
      ...commandLines(commands),
      [],
      ...FILTER_HELP,
    ]);
  }

  private openFilter(): void {
    const f = this.current()?.filter;
    if (!f) return;
    const before = f.get();
    this.openPrompt({
      kind: "input",
      label: "/",
      initial: before,
      onChange: (v) => f.set(v),
      validate: (v) => f.problem?.(v) ?? null,
      onSubmit: (v) => f.set(v.trim()),
      onCancel: () => f.set(before),
    });
  }

  private openPalette(): void {
    const host = this.commandHost();
    this.openPrompt({
      kind: "input",
      label: ":",
      complete: (typed) => completeCommand(host, typed),
      onSubmit: (line) => runCommand(host, line),
    });
  }

  private commandHost(): CommandHost {
    return {
      show: (v) => this.show(v),
      openJob: (id) => this.openJob(id),
      openJobDetail: (id) => this.openJobDetail(id),
      scaleTo: (n) => this.actions.scaleTo(n),
      autoscale: (a, b, w) => this.actions.autoscale(a, b, w),
      verify: () => void this.actions.verify(),
      submit: (file) => this.actions.submit(file),
      help: () => this.openHelp(),
      quit: () => this.stop(),
      canChange: () => this.stores.session.canChange(),
      jobIds: () => this.stores.jobs.list().map((j) => j.id),
      say: (text, level) => this.stores.session.say(text, level),
    };
  }

  private draw(): void {
    const { term, chrome } = this;
    if (!term || !chrome || this.stopped) return;
    const now = Date.now();
    const { session } = this.stores;
    session.expireFlash(now);
    const view = this.current();
    chrome.setHeader([...(view?.title() ?? []), { text: "   ? help  : command" }]);
    view?.draw(now);
    chrome.setFooter(
      this.prompt ? promptLine(this.prompt, term.cols) : footerLine(this.keys.bound(), term.cols),
    );
    chrome.setStatus(
      statusLine(
        {
          baseUrl: session.baseUrl,
          who: session.who,
          readOnly: session.readOnly,
          connection: session.connection,
          flash: session.flash,
          now,
        },
        term.cols,
      ),
    );
    if (this.overlayState)
      this.overlayState.fits = chrome.showOverlay(
        this.overlayState.title,
        this.overlayState.lines,
        this.overlayState.scroll,
      );
    term.render();
  }
}
