import { describe, expect, it } from "vitest";
import { LineSplitter } from "../src/sandbox/lines.ts";

function splitLines(chunks: Buffer[], maxBytes?: number): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter((line) => lines.push(line), maxBytes);
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return lines;
}

// Every line is stored in PostgreSQL text, which holds neither NUL nor invalid UTF-8.
describe("LineSplitter with any bytes a job prints", () => {
  it("turns NUL and each invalid UTF-8 sequence into U+FFFD, wherever the chunks are cut", () => {
    const bytes = Buffer.concat([
      Buffer.from("x\0y\n"),
      Buffer.from([0xff, 0xfe]),
      Buffer.from("bad\n"),
      Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8: not valid UTF-8
      Buffer.from(" half\n\0\0\nend\0"),
    ]);
    const want = ["x\uFFFDy", "\uFFFD\uFFFDbad", "\uFFFD\uFFFD\uFFFD half", "\uFFFD\uFFFD", "end\uFFFD"];
    for (let a = 0; a <= bytes.length; a++) {
      expect(splitLines([bytes.subarray(0, a), bytes.subarray(a)])).toEqual(want);
    }
  });

  it("repairs the pieces of a line cut at the cap too", () => {
    expect(splitLines([Buffer.from("abc\0efgh\0jk\n")], 4)).toEqual(["abc\uFFFD", "efgh", "\uFFFDjk"]);
  });

  it("leaves valid text alone, astral characters and control characters other than NUL included", () => {
    const text = "😀 e\u0301 \u001b[31mred\u001b[0m \t\u2028 \uFFFD";
    expect(splitLines([Buffer.from(`${text}\n`)])).toEqual([text]);
  });
});
