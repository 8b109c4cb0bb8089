import { describe, expect, it } from "vitest";
import { agentColumns, agentStatusCell, sandboxCell } from "../../src/tui/render/agents.ts";
import { formatAge, formatBytes, formatDuration, formatPercent } from "../../src/tui/render/format.ts";
import { DEFAULT_HEARTBEAT_POLICY, freshness, heartbeatCell } from "../../src/tui/render/heartbeat.ts";
import { attemptMarker, stepMarker } from "../../src/tui/render/joblog.ts";
import { exitCodeCell, jobStateLabel } from "../../src/tui/render/jobstate.ts";
import { clipLine, highlight, lineWidth, wrapLine } from "../../src/tui/render/lines.ts";
import { connectionCell } from "../../src/tui/render/status.ts";
import { type Line, plain } from "../../src/tui/render/style.ts";
import { columnWidths, tableRow } from "../../src/tui/render/table.ts";
import { displayWidth, fitText, sanitize, truncate } from "../../src/tui/render/text.ts";
import { agent } from "./fixtures.ts";

const policy = DEFAULT_HEARTBEAT_POLICY; // beat every 10 s, offline after 30 s

describe("heartbeat age", () => {
  it("is fresh up to one and a half intervals, late after, offline from the threshold", () => {
    expect(freshness(0, "online", policy)).toBe("fresh");
    expect(freshness(15_000, "online", policy)).toBe("fresh");
    expect(freshness(15_001, "online", policy)).toBe("late");
    expect(freshness(29_999, "online", policy)).toBe("late");
    expect(freshness(30_000, "online", policy)).toBe("offline");
    expect(freshness(1_000, "offline", policy)).toBe("offline");
  });

  it("shows the age in green when fresh, and says late or offline in words and colour", () => {
    expect(heartbeatCell(3_400, "online", policy)).toEqual({ text: "3s", color: "green" });
    expect(heartbeatCell(15_000, "online", policy)).toEqual({ text: "15s", color: "green" });
    expect(heartbeatCell(16_000, "online", policy)).toEqual({ text: "16s late", color: "yellow" });
    expect(heartbeatCell(30_000, "online", policy)).toEqual({ text: "30s offline", color: "red" });
    expect(heartbeatCell(125_000, "offline", policy)).toEqual({ text: "2m05s offline", color: "red" });
  });

  it("ticks from lastHeartbeatAt, corrected for the server's clock", () => {
    const now = Date.parse("2026-01-01T00:00:10Z");
    const a = { ...agent({ id: "a", name: "a" }, now), lastHeartbeatAt: "2026-01-01T00:00:00Z", running: 0 };
    const cell = (t: number, skew: number) =>
      agentColumns(t, skew, policy)
        .find((c) => c.title === "HEARTBEAT")
        ?.cell(a);
    expect(cell(now, 0)).toEqual({ text: "10s", color: "green" });
    expect(cell(now + 7_000, 0)).toEqual({ text: "17s late", color: "yellow" });
    // Our clock runs 5 s ahead of the server's: the age is the server's.
    expect(cell(now + 5_000, 5_000)).toEqual({ text: "10s", color: "green" });
  });
});

describe("agent cells", () => {
  it("names status and activity, and a pending drain", () => {
    const a = { ...agent({ id: "a", name: "a" }), running: 0 };
    expect(agentStatusCell(a)).toEqual({ text: "idle", color: "green" });
    expect(agentStatusCell({ ...a, activity: "busy", drainRequested: true })).toEqual({
      text: "busy (drain)",
      color: "yellow",
    });
    expect(agentStatusCell({ ...a, status: "offline" })).toEqual({ text: "offline", color: "red" });
  });

  it("shows an agent without a sandbox loudly", () => {
    const a = { ...agent({ id: "a", name: "a", unsafe: true, sandbox: "none" }), running: 0 };
    expect(sandboxCell(a)).toEqual({ text: "UNSAFE", color: "red", bold: true });
  });
});

describe("job state labels", () => {
  it("pairs every state with a symbol and a word", () => {
    expect(jobStateLabel("queued")).toEqual({ text: "· queued", color: "blue" });
    expect(jobStateLabel("running")).toEqual({ text: "▶ running", color: "cyan" });
    expect(jobStateLabel("succeeded")).toEqual({ text: "✓ succeeded", color: "green" });
    expect(jobStateLabel("failed")).toEqual({ text: "✗ failed", color: "red" });
    expect(jobStateLabel("canceled")).toEqual({ text: "⊘ canceled", color: "yellow" });
    expect(jobStateLabel("timed_out")).toEqual({ text: "✗ timed out", color: "red" });
    expect(jobStateLabel("canceling").text).toBe("■ canceling");
  });

  it("marks a non-zero exit code", () => {
    expect(exitCodeCell(null)).toEqual({ text: "" });
    expect(exitCodeCell(0)).toEqual({ text: "0" });
    expect(exitCodeCell(137)).toEqual({ text: "137", color: "red" });
  });
});

describe("formats", () => {
  it("formats bytes in binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1024)).toBe("1.0 KiB");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(16 * 1024 * 1024)).toBe("16 MiB");
    expect(formatBytes(5 * 1024 ** 3)).toBe("5.0 GiB");
    expect(formatBytes(-1)).toBe("-");
  });

  it("formats durations with at most two units", () => {
    expect(formatDuration(450)).toBe("450ms");
    expect(formatDuration(12_999)).toBe("13s");
    // A 5 s timeout that fired at 4.98 s did not take "4s".
    expect(formatDuration(4_980)).toBe("5.0s");
    expect(formatDuration(1_040)).toBe("1.0s");
    expect(formatDuration(59_600)).toBe("1m00s");
    expect(formatDuration(185_000)).toBe("3m05s");
    expect(formatDuration(2 * 3600_000 + 3 * 60_000)).toBe("2h03m");
    expect(formatDuration(3 * 86_400_000 + 4 * 3600_000)).toBe("3d04h");
    expect(formatDuration(Number.NaN)).toBe("-");
    expect(formatDuration(-5)).toBe("-");
    expect(formatAge(999)).toBe("0s");
    expect(formatPercent(1, 3)).toBe("33%");
    expect(formatPercent(0, 0)).toBe("-");
  });
});

describe("wide cells", () => {
  it("measures wide characters as two cells and combining marks as none", () => {
    expect(displayWidth("abc")).toBe(3);
    expect(displayWidth("日本")).toBe(4);
    expect(displayWidth("e\u0301")).toBe(1);
    expect(displayWidth("🚀")).toBe(2);
  });

  it("truncates with an ellipsis and never splits a wide character", () => {
    expect(truncate("hello", 5)).toBe("hello");
    expect(truncate("hello world", 8)).toBe("hello w…");
    expect(truncate("日本語テキスト", 6)).toBe("日本 …");
    expect(displayWidth(truncate("日本語テキスト", 6))).toBe(6);
    expect(truncate("abc", 0)).toBe("");
    expect(fitText("ab", 4)).toBe("ab  ");
    expect(fitText("ab", 4, "right")).toBe("  ab");
  });

  it("keeps every row of a table exactly as wide as the table", () => {
    const cols = [
      { title: "NAME", width: 6, flex: 1, cell: (r: string) => r },
      { title: "N", width: 3, align: "right" as const, cell: () => "12345" },
    ];
    const widths = columnWidths(cols, 20);
    expect(widths).toEqual([16, 3]);
    for (const r of ["x", "a very long name that will not fit", "日本語日本語日本語日本語"])
      expect(displayWidth(plain(tableRow(cols, widths, r)))).toBe(20);
    // Too narrow for both: the right column goes rather than everything squeezing.
    expect(columnWidths(cols, 8)).toEqual([8]);
  });

  it("makes program output safe to draw", () => {
    expect(sanitize("\x1b[31mred\x1b[0m\tdone\r\nnext\x07")).toBe("red    done next\uFFFD");
  });

  it("composes accents and drops zero-width characters, so a row is as wide as it was measured", () => {
    expect(sanitize("e\u0301-combining")).toBe("\u00e9-combining");
    expect(sanitize("a\u200bzero-width")).toBe("azero-width");
    // A family emoji is three people joined by zero-width joiners: three replacement characters.
    expect(sanitize("\u{1F469}\u200d\u{1F469}\u200d\u{1F467}-family")).toBe("\uFFFD\uFFFD\uFFFD-family");
    for (const s of ["e\u0301-combining", "a\u200bzero-width", "ok \uFE0F"])
      expect(displayWidth(sanitize(s))).toBe([...sanitize(s)].length);
  });
});

describe("connection state", () => {
  it("counts down to the next try", () => {
    const now = 1_000_000;
    expect(connectionCell({ kind: "live" }, now)).toEqual({ text: "● live", color: "green" });
    expect(connectionCell({ kind: "reconnecting", retryAt: now + 2_100, reason: "x" }, now).text).toBe(
      "◌ reconnecting in 3s",
    );
    expect(connectionCell({ kind: "unauthorised", retryAt: now, reason: "HTTP 401" }, now).text).toBe(
      "✗ unauthorised",
    );
  });
});

describe("step markers across attempts", () => {
  const step = {
    index: 1,
    name: "build",
    state: "succeeded",
    exitCode: 0,
    startedAt: null,
    finishedAt: null,
  } as const;
  it("the latest attempt's marker shows the step's state and exit; an earlier attempt's shows only its attempt", () => {
    expect(plain(stepMarker(1, step as never))).toBe("── step 2: build ✓ ok exit 0 ──");
    expect(plain(stepMarker(1, step as never, 1))).toBe("── step 2: build (attempt 1) ──");
    expect(plain(attemptMarker(2))).toBe("══ attempt 2 ══");
  });
});

describe("long lines: clip, wrap, highlight", () => {
  const text = (l: Line) => l.map((s) => s.text).join("");

  it("clips with an ellipsis at the end that has more, and scrolls to the tail at most", () => {
    const line: Line = [{ text: "12:00:00 ", color: "gray" }, { text: "abcdefghijklmnopqrstuvwxyz" }];
    expect(text(clipLine(line, 0, 40))).toBe("12:00:00 abcdefghijklmnopqrstuvwxyz");
    expect(text(clipLine(line, 0, 12))).toBe("12:00:00 ab…");
    expect(text(clipLine(line, 9, 12))).toBe("…bcdefghijk…");
    expect(text(clipLine(line, 500, 12))).toBe("…pqrstuvwxyz");
    expect(lineWidth(clipLine(line, 5, 12))).toBe(12);
    // Styles survive the cut.
    expect(clipLine(line, 0, 12)[0]).toEqual({ text: "12:00:00 ", color: "gray" });
    // A wide character is never cut in half.
    const wide: Line = [{ text: "日本語のテキスト" }];
    for (let w = 3; w < 12; w++) expect(lineWidth(clipLine(wide, 1, w))).toBeLessThanOrEqual(w);
  });

  it("wraps into rows of the width, marking continuations, losing nothing", () => {
    const line: Line = [{ text: "x".repeat(25) }];
    const rows = wrapLine(line, 10);
    expect(rows.map(text)).toEqual(["xxxxxxxxxx", "↪ xxxxxxxx", "↪ xxxxxxx"]);
    expect(wrapLine([{ text: "short" }], 10)).toEqual([[{ text: "short" }]]);
  });

  it("marks every match, case-insensitively, also across styled pieces", () => {
    const line: Line = [{ text: "ERR", color: "red" }, { text: "or here, error there" }];
    const marked = highlight(line, "error");
    expect(text(marked)).toBe("ERRor here, error there");
    expect(marked.filter((s) => s.inverse).map((s) => s.text)).toEqual(["ERR", "or", "error"]);
    expect(marked[0]).toEqual({ text: "ERR", color: "yellow", inverse: true });
    expect(highlight(line, "absent")).toBe(line);
  });
});
