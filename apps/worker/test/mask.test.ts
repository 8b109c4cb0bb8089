import { afterEach, describe, expect, it, vi } from "vitest";
import { LineMasker, MASK, secretVariants, tooShort } from "../src/mask.ts";

const SECRET = "npm_Secret+Value/42=xyz";

function masked(lines: string[], secrets = [SECRET]): string[] {
  const out: string[] = [];
  const m = new LineMasker(secrets, (t) => out.push(t));
  for (const l of lines) m.line(l);
  m.flush();
  return out;
}

describe("secret masking", () => {
  it("masks the value and each common encoding of it inside ordinary text", () => {
    const bytes = Buffer.from(SECRET);
    const encodings = [
      SECRET,
      bytes.toString("base64"),
      Buffer.from(`x${SECRET}`).toString("base64"),
      Buffer.from(`xy${SECRET}`).toString("base64"),
      bytes.toString("base64url"),
      bytes.toString("hex"),
      bytes.toString("hex").toUpperCase(),
      encodeURIComponent(SECRET),
      encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
    ];
    for (const e of encodings) {
      const [line] = masked([`before ${e} after`]);
      // Whatever of an encoding is left unmasked is at most the few characters that mix in its neighbours.
      expect(line, e).toMatch(/^before .{0,3}\*\*\*.{0,3} after$/);
      expect(line).not.toContain(e.slice(4, -4));
    }
  });

  it("masks a secret cut across two lines at every possible point", () => {
    for (let cut = 1; cut < SECRET.length; cut++) {
      const out = masked([`head ${SECRET.slice(0, cut)}`, `${SECRET.slice(cut)} tail`]);
      expect(out, `cut at ${cut}`).toEqual([`head ${MASK}`, `${MASK} tail`]);
    }
  });

  it("masks a secret printed one character per line", () => {
    const out = masked([...SECRET]);
    expect(out.every((l) => l === MASK)).toBe(true);
    expect(out).toHaveLength(SECRET.length);
  });

  it("passes lines through untouched and in order when nothing matches", () => {
    expect(masked(["a", "npm", "b"], [SECRET])).toEqual(["a", "npm", "b"]);
  });

  it("offers no variant shorter than the masking minimum and names secrets too short to mask", () => {
    expect(secretVariants("abcd").every((v) => v.length >= 4)).toBe(true);
    expect(tooShort({ OK: "long-enough", NO: "ab" })).toEqual(["NO"]);
  });

  // Written out by hand from the encodings, not computed with the code under test, so a change to
  // how variants are made shows here as a difference in the table.
  it("makes exactly these variants, longest first: a table over every encoding", () => {
    const table: [string, string[]][] = [
      [
        "pa ss/é",
        [
          "%70%61%20%73%73%2F%C3%A9", // every byte percent-encoded, upper and lower case
          "%70%61%20%73%73%2f%c3%a9",
          "70612073732fc3a9", // hex, both cases
          "70612073732FC3A9",
          "pa%20ss%2F%C3%A9", // encodeURIComponent, lower-case hex, form encoding
          "pa%20ss%2f%c3%a9",
          "pa+ss%2F%C3%A9",
          "cGEgc3Mvw6", // base64 at offset 0, 1 and 2 (only the characters of the value's own bits)
          "BhIHNzL8Op",
          "wYSBzcy/Dq",
          "wYSBzcy_Dq", // base64url: only where it differs from base64
          "pa ss/é",
        ],
      ],
      ["abcd", ["%61%62%63%64", "61626364", "YWJjZ", "hYmNk", "abcd", "FiY2"]],
    ];
    for (const [secret, want] of table) {
      const got = secretVariants(secret);
      expect([...got].sort(), secret).toEqual([...want].sort());
      for (let i = 1; i < got.length; i++)
        expect((got[i - 1] ?? "").length, `${secret}: longest first`).toBeGreaterThanOrEqual(
          (got[i] ?? "").length,
        );
    }
  });

  it("refuses secrets of 3 characters and accepts 4; base64 pieces under 4 characters are not used", () => {
    expect(tooShort({ THREE: "abc", FOUR: "abcd", EMPTY: "" })).toEqual(["THREE", "EMPTY"]);
    // Of "abcde" at offset 2 base64 keeps 5 characters; of "abcd" at offset 1 exactly the minimum, 4.
    expect(secretVariants("abcd")).toContain("FiY2");
    expect(secretVariants("abcd").some((v) => v.length < 4)).toBe(false);
  });

  it("masks runs: two copies side by side become one mask, copies apart stay apart, overlapping copies are all hidden", () => {
    expect(masked([`a${SECRET}b${SECRET}c`])).toEqual([`a${MASK}b${MASK}c`]);
    expect(masked([`${SECRET}${SECRET}`])).toEqual([MASK]);
    expect(masked(["xaaaaay"], ["aaaa"])).toEqual([`x${MASK}y`]);
  });

  it("with no secrets, every line goes out at once, untouched", () => {
    const out: string[] = [];
    const m = new LineMasker([], (t) => out.push(t));
    m.line("npm_Se");
    expect(out).toEqual(["npm_Se"]);
  });

  describe("holding a line that may end with the start of a secret", () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it("holds it until the next line, or sends it on its own after a short wait", () => {
      vi.useFakeTimers();
      const out: string[] = [];
      const m = new LineMasker([SECRET], (t) => out.push(t));
      m.line("plain line");
      expect(out).toEqual(["plain line"]);
      m.line(`ends with ${SECRET.slice(0, 5)}`);
      expect(out).toEqual(["plain line"]);
      vi.advanceTimersByTime(49);
      expect(out).toEqual(["plain line"]);
      vi.advanceTimersByTime(1);
      expect(out).toEqual(["plain line", `ends with ${SECRET.slice(0, 5)}`]);
      // A line that ends with no prefix of any variant is never held.
      m.line(`ends with ${SECRET.slice(1, 6)}x`);
      expect(out.at(-1)).toBe(`ends with ${SECRET.slice(1, 6)}x`);
    });

    it("a new line cancels the wait, and what was held goes out with the right part masked", () => {
      vi.useFakeTimers();
      const out: string[] = [];
      const m = new LineMasker([SECRET], (t) => out.push(t));
      m.line(`a ${SECRET.slice(0, 3)}`);
      m.line(`${SECRET.slice(3, 10)}`);
      expect(out).toEqual([]);
      m.line(`${SECRET.slice(10)} end.`);
      expect(out).toEqual([`a ${MASK}`, MASK, `${MASK} end.`]);
      vi.advanceTimersByTime(1_000);
      expect(out).toHaveLength(3);
    });

    it("only as much as a secret's prefix is held back: a long line ending in one is held whole, earlier lines are not", () => {
      const out: string[] = [];
      const m = new LineMasker(["abcdefgh"], (t) => out.push(t));
      m.line("first");
      m.line("second ab");
      expect(out).toEqual(["first"]);
      m.line("cdefgh third");
      expect(out).toEqual(["first", `second ${MASK}`, `${MASK} third`]);
      m.line("zzabcdefgzz");
      expect(out.at(-1)).toBe("zzabcdefgzz");
      m.flush();
    });
  });
});
