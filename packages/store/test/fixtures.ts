import { JobSpec } from "@skiff/protocol";
import type { Actor } from "../src/index.ts";

export const alice: Actor = { actor: "alice", role: "operator", requestId: "req-1", sourceIp: "127.0.0.1" };

export function spec(overrides: Record<string, unknown> = {}): JobSpec {
  return JobSpec.parse({
    name: "hello",
    steps: [
      { name: "one", run: "echo one" },
      { name: "two", run: "echo two", network: "on" },
    ],
    ...overrides,
  });
}
