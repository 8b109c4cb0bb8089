import { describe, expect, it } from "vitest";
import { parseLabels } from "../src/commands/worker.ts";

describe("skiff worker --labels", () => {
  it("reads queue=a,b as several queues, next to other labels", () => {
    expect(parseLabels("queue=a,b,arch=arm64")).toEqual({ queue: "a,b", arch: "arm64" });
    expect(parseLabels("arch=arm64,queue=a,b,c")).toEqual({ arch: "arm64", queue: "a,b,c" });
  });

  it("refuses a first piece that is not k=v, naming it", () => {
    expect(() => parseLabels("oops,queue=a")).toThrow(/k=v pairs.*"oops"/);
    expect(() => parseLabels("=x")).toThrow(/k=v pairs/);
  });
});
