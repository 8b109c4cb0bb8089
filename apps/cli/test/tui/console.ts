import { waitFor } from "@skiff/testkit";
import { App } from "../../src/tui/app.ts";
import type { Backend } from "../../src/tui/data/backend.ts";
import { HeadlessTerminal } from "./headless.ts";

export interface TestConsole {
  app: App;
  screen: HeadlessTerminal;
  /** Waits (with a deadline) until the screen shows `pattern`; returns the screen's text. */
  waitForText(pattern: string | RegExp, timeoutMs?: number): Promise<string>;
  press(keys: string): Promise<void>;
  close(): void;
}

/** The console in-process, drawing into a headless terminal. */
export function startConsole(
  backend: Backend,
  opts: {
    readOnly?: boolean;
    color?: boolean;
    cols?: number;
    rows?: number;
    confirmQuit?: string;
    mouse?: boolean;
  } = {},
): TestConsole {
  const screen = new HeadlessTerminal(opts.cols ?? 160, opts.rows ?? 48);
  const app = new App({
    backend,
    readOnly: opts.readOnly ?? false,
    color: opts.color ?? true,
    terminal: { input: screen.input, output: screen.output, terminal: "xterm-256color" },
    ...(opts.confirmQuit ? { confirmQuit: opts.confirmQuit } : {}),
    mouse: opts.mouse === true,
  });
  app.start();
  const seen = (text: string, pattern: string | RegExp) =>
    typeof pattern === "string" ? text.includes(pattern) : pattern.test(text);
  return {
    app,
    screen,
    async waitForText(pattern, timeoutMs = 5_000) {
      try {
        return await waitFor(
          `the screen to show ${String(pattern)}`,
          async () => {
            await screen.flush();
            const text = screen.text();
            return seen(text, pattern) ? text : false;
          },
          timeoutMs,
        );
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- screen ---\n${screen.text()}`);
      }
    },
    async press(keys) {
      screen.press(keys);
      await new Promise((r) => setImmediate(r));
    },
    close() {
      app.stop();
      screen.dispose();
    },
  };
}
