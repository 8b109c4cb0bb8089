import { describe, expect, it } from "vitest";
import { terminalSafe } from "../src/follow.ts";

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

  it("leaves ordinary text, tabs and non-ASCII alone", () => {
    expect(terminalSafe("plain\ttab — é 漢字")).toBe("plain\ttab — é 漢字");
  });
});
