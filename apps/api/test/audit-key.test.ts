import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadAuditKey } from "../src/audit-key.ts";

describe("the audit key", () => {
  const home = () => mkdtempSync(join(tmpdir(), "skiff-key-"));

  it("is made once in the home with mode 0600 and read back the same", () => {
    const h = home();
    const made = loadAuditKey(h, {}, true);
    expect(made?.source).toMatch(/audit\.key \(created now, mode 0600\)$/);
    expect(statSync(join(h, "audit.key")).mode & 0o777).toBe(0o600);
    const again = loadAuditKey(h, {}, true);
    expect(again?.key.equals(made?.key ?? Buffer.alloc(0))).toBe(true);
    expect(readFileSync(join(h, "audit.key"), "utf8").trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it("comes from SKIFF_AUDIT_KEY first; none is made where it may not be", () => {
    const h = home();
    const key = "k".repeat(40);
    expect(loadAuditKey(h, { SKIFF_AUDIT_KEY: key }, true)?.key.toString()).toBe(key);
    expect(loadAuditKey(h, {}, false)).toBeNull();
  });

  it("refuses the example's placeholder, a short key and a short key file, saying what to do", () => {
    const h = home();
    expect(() =>
      loadAuditKey(h, { SKIFF_AUDIT_KEY: "CHANGE-ME-to-the-output-of-openssl-rand-hex-32" }, true),
    ).toThrow(/placeholder: set it to the output of `openssl rand -hex 32`/);
    expect(() => loadAuditKey(h, { SKIFF_AUDIT_KEY: "short" }, true)).toThrow(/at least 32 characters/);
    writeFileSync(join(h, "audit.key"), "tiny\n");
    expect(() => loadAuditKey(h, {}, true)).toThrow(/holds fewer than 32 characters/);
  });
});
