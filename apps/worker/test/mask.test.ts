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
          "pa%20ss%2F%C3%A9", // encodeURIComponent and RFC 3986 strict (the same here), both cases
          "pa%20ss%2f%c3%a9",
          "pa+ss%2F%C3%A9", // form encoding (quote_plus), both cases
          "pa+ss%2f%c3%a9",
          "pa%20ss/%C3%A9", // Python's quote(), which keeps '/', both cases, with and without '+'
          "pa%20ss/%c3%a9",
          "pa+ss/%C3%A9",
          "pa+ss/%c3%a9",
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
    // White space is not a secret: four line breaks, or three characters and a newline, are refused.
    expect(tooShort({ NL: "\n\n\n\n", SHORT: "abc\n", SPACED: " a b c ", OK: "abcd\n" })).toEqual([
      "NL",
      "SHORT",
      "SPACED",
    ]);
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

  it("masks the encodings other tools write: Python's quote() with and without safe='', quote_plus, jq @uri", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const quoted = "wJalrXUtnFEMI/K7MDENG%2BbPxRfiCYEXAMPLEKEY"; // urllib.parse.quote(s)
    const strict = "Hunter2%21pass%20word%2Fx%281%29%2A"; // quote("Hunter2!pass word/x(1)*", safe="")
    expect(masked([`k=${quoted};`], [secret])).toEqual([`k=${MASK};`]);
    expect(masked([`k=${strict};`], ["Hunter2!pass word/x(1)*"])).toEqual([`k=${MASK};`]);
    expect(masked(["k=Hunter2%21pass+word%2Fx%281%29%2A;"], ["Hunter2!pass word/x(1)*"])).toEqual([
      `k=${MASK};`,
    ]);
  });

  it("masks a secret that holds line breaks (a PEM key), printed line by line, and one read with its final newline", () => {
    const pem =
      "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END KEY-----\n";
    const out = masked(pem.split("\n").slice(0, -1), [pem]);
    expect(out.join("\n")).not.toMatch(/[A-Za-z0-9]{6}/);
    expect(out.every((l) => l === MASK)).toBe(true);
    // kubectl create secret --from-file keeps the file's newline; `echo "$TOKEN"` prints the rest.
    const token = "tokvalue-9f8e7d6c\n";
    expect(masked(["tokvalue-9f8e7d6c"], [token])).toEqual([MASK]);
    // base64 leaves the last characters, which mix in what follows the value, as they are.
    expect(masked([Buffer.from("tokvalue-9f8e7d6c").toString("base64")], [token])).toEqual([`${MASK}M=`]);
    expect(masked([Buffer.from(token).toString("base64")], [token])).toEqual([MASK]);
  });

  it("drops forms it could never match or that are too short, keeps both sides of a final newline, pads every byte to two hex digits", () => {
    const short = secretVariants("abc");
    expect(short).not.toContain("abc");
    expect(short.every((v) => v.length >= 4)).toBe(true);
    expect(short).toContain("YWJj");
    const multi = secretVariants("ab\ncd\n");
    expect(multi.some((v) => /[\r\n]/.test(v))).toBe(false);
    // Flattened, base64 of the whole value and of it without its final newline, URL-encoded with %0A.
    expect(multi).toEqual(expect.arrayContaining(["abcd", "YWIKY2QK", "YWIKY2", "ab%0Acd", "ab%0acd%0a"]));
    expect(secretVariants("ab\tcd")).toEqual(expect.arrayContaining(["ab%09cd", "%61%62%09%63%64"]));
  });

  it("a line that ends with a whole secret is sent at once, not held as if the secret were still coming", () => {
    vi.useFakeTimers();
    try {
      const out: string[] = [];
      const m = new LineMasker(["Qx7-Lm9_Zk"], (t) => out.push(t));
      m.line("pw=Qx7-Lm9_Zk");
      expect(out).toEqual([`pw=${MASK}`]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("a PEM key leaks in no common rewrite: prefixed or numbered lines, part of it, one line, JSON, base64 without breaks", () => {
    const body = [
      "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu",
      "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm",
    ];
    for (const eol of ["\n", "\r\n"]) {
      const pem = ["-----BEGIN KEY-----", ...body, "-----END KEY-----", ""].join(eol);
      const leaks = (lines: string[]) => masked(lines, [pem]).join("\n");
      const clean = (lines: string[]) =>
        expect(leaks(lines), JSON.stringify(lines)).not.toMatch(/MIIBOg|KUpRKf|QJAIJL|1Pt8Qu/);
      clean(body.map((l) => `> ${l}`)); // sed 's/^/> /'
      clean(body.map((l, i) => `     ${i + 2}\t${l}`)); // cat -n
      clean([body[1] as string]); // one line of it, alone (head, grep -v, tac)
      clean([pem.replace(/\r?\n/g, " ").trim()]); // echo $PEM, unquoted
      clean([JSON.stringify(pem)]); // jq -Rs ., JSON.stringify
      clean([`$'${pem.replace(/\r?\n/g, "\\n")}'`]); // printf %q, declare -p
      clean([Buffer.from(pem.replace(/\r?\n/g, "")).toString("base64")]);
    }
  });

  it("masks what URLSearchParams, PHP's urlencode, encodeURI and HTML escaping make of a secret", () => {
    const secret = "p@ss w0rd/+&=%?x~y";
    expect(masked([`q=${new URLSearchParams({ s: secret }).toString().slice(2)};`], [secret])).toEqual([
      `q=${MASK};`,
    ]);
    expect(masked([`u=${encodeURI(secret)};`], [secret])).toEqual([`u=${MASK};`]);
    expect(masked(["h=p@ss w0rd/+&amp;=%?x~y;"], [secret])).toEqual([`h=${MASK};`]);
  });

  it("a held line keeps its marks when the line that made them has gone out", () => {
    // "abcd|efgh" is cut across the first two lines; the second also ends with a new start ("ab").
    expect(masked(["x abcd", "efgh ab", "zz"], ["abcdefgh"])).toEqual([`x ${MASK}`, `${MASK} ab`, "zz"]);
  });

  it("of two held lines, only the one holding a possible start waits", () => {
    const out: string[] = [];
    const m = new LineMasker(["abcdefgh"], (t) => out.push(t));
    m.line("x ab");
    m.line("zz ab");
    expect(out).toEqual(["x ab"]);
    m.flush();
    expect(out).toEqual(["x ab", "zz ab"]);
  });

  it("each new held line restarts the wait: a line is never let go early by the previous line's timer", () => {
    vi.useFakeTimers();
    try {
      const out: string[] = [];
      const m = new LineMasker(["abcdefgh"], (t) => out.push(t));
      m.line("one ab");
      vi.advanceTimersByTime(40);
      m.line("cd"); // still a start: "abcd"
      vi.advanceTimersByTime(15);
      expect(out).toEqual([]);
      vi.advanceTimersByTime(40);
      expect(out).toEqual(["one ab", "cd"]);
      m.line("two ab");
      vi.advanceTimersByTime(40);
      m.flush(); // sends "two ab" and ends its wait
      expect(out.at(-1)).toBe("two ab");
      vi.advanceTimersByTime(5);
      m.line("three ab");
      vi.advanceTimersByTime(15); // past where the flushed line's timer would have fired
      expect(out.at(-1)).toBe("two ab");
      vi.advanceTimersByTime(40);
      expect(out.at(-1)).toBe("three ab");
    } finally {
      vi.useRealTimers();
    }
  });

  it("a multi-line secret of short lines is masked on one line: joined by spaces, or with its breaks escaped", () => {
    for (const eol of ["\n", "\r\n"]) {
      const secret = ["ab1", "cd2", "ef3", ""].join(eol);
      expect(masked(["ab1 cd2 ef3"], [secret]), "echo $S").toEqual([MASK]);
      expect(masked([JSON.stringify(secret.trimEnd())], [secret]), "JSON").toEqual([`"${MASK}"`]);
    }
    expect(masked(["ab1\\ncd2\\nef3"], ["ab1\r\ncd2\r\nef3\r\n"]), "\\n for CRLF").toEqual([MASK]);
    // Lines indented in the value (as YAML block scalars often are) are masked without their indent.
    expect(masked(["first-line-value"], ["  first-line-value\n  second-line-value\n"])).toEqual([MASK]);
  });

  it("masks every HTML entity a secret can be escaped with", () => {
    const secret = `a<b>c"d'e&f`;
    expect(masked(["x=a&lt;b&gt;c&quot;d&#39;e&amp;f;"], [secret])).toEqual([`x=${MASK};`]);
  });
});
