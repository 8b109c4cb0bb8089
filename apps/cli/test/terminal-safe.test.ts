import { describe, expect, it } from "vitest";
import { terminalSafe } from "../src/output.ts";

describe("a job's output on the user's terminal", () => {
  it("is shown, not obeyed: window title, clipboard, bell, cursor moves and carriage returns are made visible", () => {
    expect(terminalSafe("\u001b]52;c;ZWNobyBwd25lZA==\u0007")).toBe("^[]52;c;ZWNobyBwd25lZA==^G");
    expect(terminalSafe("\u001b]0;owned\u0007title")).toBe("^[]0;owned^Gtitle");
    expect(terminalSafe("ok\rFAKE")).toBe("ok^MFAKE");
    expect(terminalSafe("\u001b[2J\u001b[H")).toBe("^[[2J^[[H");
    expect(terminalSafe("a\u0000b\u007fc\u009b31m")).toBe("a^@b^?c\uFFFD31m");
  });

  it("keeps colours, and resets them at the end of the line so they cannot bleed into Skiff's own", () => {
    expect(terminalSafe("\u001b[31mred\u001b[0m plain")).toBe("\u001b[31mred\u001b[0m plain\u001b[0m");
    expect(terminalSafe("\u001b[1;38;5;208mbold orange")).toBe("\u001b[1;38;5;208mbold orange\u001b[0m");
  });

  it("leaves ordinary text, tabs, line breaks and non-ASCII alone", () => {
    expect(terminalSafe("plain\ttab — é 漢字")).toBe("plain\ttab — é 漢字");
    // --json on a terminal: pretty JSON is several lines.
    const json = JSON.stringify({ name: "a", n: 1 }, null, 2);
    expect(terminalSafe(json)).toBe(json);
  });
});

describe("the CLI's own lines on a terminal", () => {
  it("show a job's name with escapes in it, not obey it; piped, it is passed on unchanged", async () => {
    const { out } = await import("../src/output.ts");
    const name = "build \u001b]52;c;ZWNobw==\u0007 \u009b2J";
    const written: string[] = [];
    const write = process.stdout.write;
    const tty = process.stdout.isTTY;
    process.stdout.write = ((chunk: string) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      process.stdout.isTTY = true;
      out(`name  ${name}`);
      process.stdout.isTTY = false;
      out(`name  ${name}`);
    } finally {
      process.stdout.write = write;
      process.stdout.isTTY = tty;
    }
    expect(written).toEqual([`name  build ^[]52;c;ZWNobw==^G \uFFFD2J\n`, `name  ${name}\n`]);
  });
});

describe("the console's text filter", () => {
  it("turns C1 controls (U+0080–U+009F) into U+FFFD, as it does C0 ones", async () => {
    const { sanitize } = await import("../src/tui/render/text.ts");
    expect(sanitize("a\u009b31mb\u009d0;T\u009cc\u0085d")).toBe("a\uFFFD31mb\uFFFD0;T\uFFFDc\uFFFDd");
  });
});
