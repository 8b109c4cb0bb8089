import { describe, expect, it } from "vitest";
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
});
