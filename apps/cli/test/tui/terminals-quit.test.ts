import { rmSync } from "node:fs";
import { describeWith } from "@skiff/testkit";
import { afterAll, describe, expect, it } from "vitest";
import { emptyHome, freePort } from "../cli.ts";
import { type TerminalCase, TmuxSession, terminalLabel, tmuxGate } from "./tmux.ts";

/**
 * `q` in the console that `skiff up` attached, on the terminals operators have: it asks before
 * stopping the node and offers detaching; `n` keeps it; `D` closes the console and leaves the node
 * serving, and Ctrl-C then stops it cleanly. Each TERM at both sizes, LANG=C at one and UTF-8 at the
 * other (the rest of the console's matrix is in terminals.test.ts, against one shared node; here
 * each terminal needs a node of its own).
 */

const root = new URL("../../../../", import.meta.url).pathname;

const CASES: TerminalCase[] = ["xterm-256color", "tmux-256color", "screen-256color"].flatMap((term) => [
  { term, lang: "C", cols: 80, rows: 24 },
  { term, lang: "C.UTF-8", cols: 160, rows: 45 },
]);
const label = terminalLabel;

describeWith(tmuxGate(), "q and D in the console skiff up attached, on each terminal (tmux)", () => {
  const homes: string[] = [];
  const sessions: TmuxSession[] = [];

  afterAll(() => {
    for (const t of sessions) t.kill();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  });

  // Concurrently: each case has its own node and tmux server, and mostly waits.
  describe.concurrent.each(CASES)("%#", (c) => {
    it(`${label(c)}: q asks and offers D; n keeps the node; D detaches and it keeps serving until Ctrl-C`, {
      timeout: 180_000,
    }, async () => {
      const home = emptyHome();
      homes.push(home);
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const t = new TmuxSession(
        `env TERM=${c.term} LANG=${c.lang} LC_ALL=${c.lang} node --import tsx apps/cli/src/main.ts up --port ${port} --workers 0; echo "up exited $?"; sleep 600`,
        { cwd: root, cols: c.cols, rows: c.rows, env: { SKIFF_HOME: home } },
      );
      sessions.push(t);
      const ascii = c.lang === "C";
      await t.waitFor(ascii ? "* live" : "● live", 90_000);

      t.type("q");
      const asked = await t.waitFor("(D detaches instead)", 30_000);
      expect(asked).toMatch(/Quit and stop skiff up/);
      if (ascii) expect([...asked].filter((ch) => ch.charCodeAt(0) > 0x7e)).toEqual([]);
      t.type("n");
      await t.waitFor((pane) => !pane.includes("(D detaches instead)"), 30_000);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      t.type("q");
      await t.waitFor("(D detaches instead)", 30_000);
      t.type("D");
      const detached = await t.waitFor("console detached; still serving", 30_000);
      expect(detached).toContain(`attach again: skiff tui --api-url ${url}`);
      expect(t.format("#{alternate_on}")).toBe("0");
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      t.keys("C-c");
      await t.waitFor(/up exited 0/, 60_000);
    });
  });
});
