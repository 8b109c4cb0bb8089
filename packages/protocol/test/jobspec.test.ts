import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { JobSpec, parseOrThrow, SkiffError } from "../src/index.ts";

function rejection(body: unknown): { message: string; paths: string[] } {
  try {
    parseOrThrow(JobSpec, body, "job spec");
  } catch (err) {
    if (!(err instanceof SkiffError)) throw err;
    expect(err.code).toBe("invalid_input");
    expect(err.status).toBe(400);
    const issues = (err.details as { issues: { path: string }[] }).issues;
    return { message: err.message, paths: issues.map((i) => i.path) };
  }
  throw new Error("spec was accepted");
}

const valid = { name: "ok", steps: [{ name: "s", run: "true" }] };

describe("JobSpec", () => {
  it("accepts the design's example and fills in defaults", () => {
    const spec = JobSpec.parse(
      parseYaml(`
name: update-lodash
queue: default
image: node:20-bookworm-slim
timeoutSeconds: 600
maxAttempts: 3
resources: { memoryMb: 512, cpus: 1, pids: 256 }
env: { CI: "true" }
secrets: [NPM_TOKEN]
steps:
  - { name: clone,   run: "git clone --depth 1 \\"$REPO_URL\\" .", network: on }
  - { name: install, run: "npm ci",        network: on }
  - { name: build,   run: "npm run build", network: off }
  - { name: test,    run: "npm test",      network: off, timeoutSeconds: 300 }
`),
    );
    expect(spec.steps.map((s) => s.network)).toEqual(["on", "on", "off", "off"]);
    expect(spec.steps[3]?.timeoutSeconds).toBe(300);
    const minimal = JobSpec.parse(valid);
    expect(minimal).toMatchObject({
      queue: "default",
      maxAttempts: 3,
      timeoutSeconds: 3600,
      secrets: [],
      env: {},
    });
    expect(minimal.steps[0]?.network).toBe("off");
  });

  it("rejects missing steps", () => {
    expect(rejection({ name: "x" }).paths).toEqual(["steps"]);
    expect(rejection({ name: "x", steps: [] }).message).toMatch(/steps: a job needs at least one step/);
  });

  it("rejects an unknown field with its path, also nested", () => {
    expect(rejection({ ...valid, colour: "red" }).paths).toEqual(["colour"]);
    const nested = rejection({ name: "x", steps: [{ name: "s", run: "true", netwrok: "on" }] });
    expect(nested.paths).toEqual(["steps[0].netwrok"]);
    expect(nested.message).toContain("steps[0].netwrok: unknown field");
  });

  it("rejects wrong types with the path", () => {
    expect(rejection({ ...valid, timeoutSeconds: "600" }).paths).toEqual(["timeoutSeconds"]);
    expect(rejection({ ...valid, resources: { memoryMb: -1 } }).paths).toEqual(["resources.memoryMb"]);
    expect(rejection({ name: 42, steps: valid.steps }).paths).toEqual(["name"]);
    expect(rejection(null).paths).toEqual(["(root)"]);
  });

  it("rejects a 10 MB name without echoing it back", () => {
    const r = rejection({ ...valid, name: "n".repeat(10 * 1024 * 1024) });
    expect(r.paths).toEqual(["name"]);
    expect(r.message.length).toBeLessThan(300);
  });

  it("rejects network: maybe", () => {
    const r = rejection({ name: "x", steps: [{ name: "s", run: "true", network: "maybe" }] });
    expect(r.paths).toEqual(["steps[0].network"]);
    expect(r.message).toContain('expected "on" or "off"');
  });

  it("rejects duplicate step names at the second one", () => {
    const r = rejection({
      name: "x",
      steps: [
        { name: "a", run: "1" },
        { name: "a", run: "2" },
      ],
    });
    expect(r.paths).toEqual(["steps[1].name"]);
  });
});
