import { execFileSync, spawnSync } from "node:child_process";
import type { ServiceGate } from "@skiff/testkit";
import { waitFor } from "@skiff/testkit";

function works(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
}

/** The end-to-end console test needs tmux (to be the terminal) and bubblewrap (for the workers' jobs). */
export function tmuxGate(): ServiceGate {
  const missing = [
    works("tmux", ["-V"]) ? null : "tmux",
    works("bwrap", ["--version"]) ? null : "bubblewrap (bwrap)",
  ].filter((m) => m !== null);
  if (missing.length === 0) return { available: true, missing: null };
  return {
    available: false,
    missing: `${missing.join(" and ")} not installed; the console's end-to-end test drives it in tmux against workers that run jobs in bwrap (apt-get install tmux bubblewrap)`,
  };
}

/** A tmux server of its own (so the developer's sessions are untouched) with one window of a command. */
export class TmuxSession {
  private readonly socket = `skiff-tui-test-${process.pid}-${Date.now()}`;
  readonly target = "tui";

  constructor(
    command: string,
    opts: { cwd: string; cols?: number; rows?: number; env?: Record<string, string> },
  ) {
    const env = Object.entries(opts.env ?? {}).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
    this.tmux([
      "new-session",
      "-d",
      "-s",
      this.target,
      "-x",
      String(opts.cols ?? 160),
      "-y",
      String(opts.rows ?? 48),
      "-c",
      opts.cwd,
      ...env,
      command,
    ]);
  }

  private tmux(args: string[]): string {
    return execFileSync("tmux", ["-L", this.socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  }

  capture(): string {
    return this.tmux(["capture-pane", "-p", "-t", this.target]);
  }

  /** The pane with its styles, as SGR escape sequences (colours, bold, inverse). */
  captureStyled(): string {
    return this.tmux(["capture-pane", "-p", "-e", "-t", this.target]);
  }

  /** Sends text literally (no key names). */
  type(text: string): void {
    this.tmux(["send-keys", "-t", this.target, "-l", text]);
  }

  /** Sends named keys: `Enter`, `Escape`, `C-u`. */
  keys(...names: string[]): void {
    this.tmux(["send-keys", "-t", this.target, ...names]);
  }

  /** Waits, with a deadline, until the pane shows `pattern`; returns the pane's text (or the match). */
  async waitFor(pattern: string | RegExp | ((text: string) => boolean), timeoutMs = 20_000): Promise<string> {
    let last = "";
    const seen = (text: string) =>
      typeof pattern === "string"
        ? text.includes(pattern)
        : typeof pattern === "function"
          ? pattern(text)
          : pattern.test(text);
    try {
      return await waitFor(
        `the console to show ${typeof pattern === "function" ? "the change" : String(pattern)}`,
        () => {
          last = this.capture();
          return seen(last) ? last : false;
        },
        timeoutMs,
        // Each look is a tmux process: four consoles polled ten times a second kept a 2-core machine
        // busy with captures alone.
        250,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- pane ---\n${last}`);
    }
  }

  /** A tmux format for the pane, e.g. `#{alternate_on}` (1 while the program is on the alternate screen). */
  format(fmt: string): string {
    return this.tmux(["display-message", "-p", "-t", this.target, fmt]).trim();
  }

  /** The processes the pane's shell started (the console). */
  children(): number[] {
    const pane = this.format("#{pane_pid}");
    const out = spawnSync("pgrep", ["-P", pane], { encoding: "utf8" }).stdout ?? "";
    return out
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map(Number);
  }

  kill(): void {
    spawnSync("tmux", ["-L", this.socket, "kill-server"], { stdio: "ignore" });
  }
}

/** One terminal a console test is tried on: what TERM and the locale say, and its size. */
export interface TerminalCase {
  term: string;
  lang: string;
  cols: number;
  rows: number;
}

export const terminalLabel = (c: TerminalCase): string =>
  `TERM=${c.term} LANG=${c.lang} at ${c.cols}×${c.rows}`;
