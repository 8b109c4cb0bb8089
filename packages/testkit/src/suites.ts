import { describe, it } from "vitest";
import { inCi, type ServiceGate } from "./services.ts";

/**
 * `describe` for tests that need a service: runs them when it is there; when it is not, fails in CI
 * (one failing test that names what is missing) and skips elsewhere.
 */
export function describeWith(gate: ServiceGate, name: string, fn: () => void): void {
  if (gate.available) {
    describe(name, fn);
  } else if (inCi()) {
    describe(name, () => {
      it("has its service", () => {
        throw new Error(gate.missing ?? "service missing");
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${gate.missing})`, fn);
  }
}
