import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, hashEntry } from "../src/index.ts";
import { describeEachAdapter } from "./harness.ts";

/** Text PostgreSQL stores as given: everything but NUL. */
const UNUSUAL = [
  "𝄞 clef, 😀 face, 👩‍👩‍👧 family", // astral characters, a ZWJ sequence
  "\uFFFD replacement",
  "e\u0301 combining, \u0645\u064e harakat, \u202Eright-to-left",
  "\u0001\u0007\b\t\n\u000b\f\r\u001b[31m\u001f\u007f\u0085\u00a0\u2028\u2029\uFEFF", // controls, no NUL
  'quote " backslash \\ slash / <script>',
  "\uDBFF\uDFFF last code point, \uE000 private use, \uFFFF noncharacter",
];

describeEachAdapter("audit chain over unusual Unicode", (store) => {
  it("rows with astral, combining, control and replacement characters verify intact", async () => {
    for (const [i, text] of UNUSUAL.entries()) {
      await store().appendAudit({
        actor: text,
        role: "operator",
        action: `unicode.${i}`,
        target: text,
        outcome: "ok",
        requestId: text,
        sourceIp: text,
        details: { text, [text]: [text, { nested: text }], n: [1e21, -0, 0.1, 2 ** 60, 1e-7, -1.5e-300] },
      });
    }
    expect(await store().verifyAudit()).toMatchObject({ ok: true, checked: expect.any(Number) });
    const rows = await store().listAudit({ limit: 1000 });
    for (const row of rows.filter((r) => r.action.startsWith("unicode."))) {
      expect(UNUSUAL).toContain(row.actor);
      expect(hashEntry(row.prevHash, row)).toBe(row.hash);
    }
  });

  it("a lone surrogate, which the database keeps as U+FFFD, is hashed as the row is stored and verifies", async () => {
    const entry = await store().appendAudit({
      actor: "pool/w\ud800",
      role: "agent",
      action: "agent.register",
      target: "agents/\udfff",
      outcome: "ok",
      details: { name: "x\ud83d", "key\udc00": ["\ude00\ud83d"] },
    });
    expect(entry.actor).toBe("pool/w\uFFFD");
    expect(entry.details).toEqual({ name: "x\uFFFD", "key\uFFFD": ["\uFFFD\uFFFD"] });
    const [stored] = await store().listAudit({ limit: 1 });
    expect(stored).toEqual(entry);
    expect(await store().verifyAudit()).toMatchObject({ ok: true });
    // The hash itself does not depend on which of the two spellings it is given.
    expect(hashEntry(entry.prevHash, { ...entry, actor: "pool/w\ud800" })).toBe(entry.hash);
  });
});

/** canonicalJson as it was before strings were spelled as stored: every chain written then used it. */
function canonicalJsonBefore(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJsonBefore).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJsonBefore(obj[k])}`).join(",")}}`;
}

describe("canonical JSON", () => {
  it("is unchanged for every value the database could hold, so existing chains still verify", () => {
    const text = fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !s.includes("\0"));
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        text,
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie("value"), { maxLength: 4 }),
        fc.dictionary(text, tie("value"), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonBefore(v));
      }),
      { numRuns: 1000 },
    );
  });
});
