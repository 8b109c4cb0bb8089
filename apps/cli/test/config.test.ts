import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe("skiff.yaml", () => {
  it("the template's example parses; ${env.NAME} is substituted", () => {
    const template = new URL("../../../template/deploy-root/skiff.yaml", import.meta.url).pathname;
    expect(loadConfig(template, dir, {}).config.api?.port).toBe(8787);
    const file = write("env.yaml", "database:\n  url: ${env.PG}\nredis:\n  url: redis://${env.HOST}:6379\n");
    const { config } = loadConfig(file, dir, { PG: "postgres://db/skiff", HOST: "r" });
    expect(config.database?.url).toBe("postgres://db/skiff");
    expect(config.redis?.url).toBe("redis://r:6379");
  });

  it("is optional: no file in $SKIFF_HOME means defaults", () => {
    expect(loadConfig(undefined, join(dir, "nowhere"))).toEqual({ file: null, config: {} });
  });

  it("a bad value stops with the field's path and what was expected", () => {
    const file = write("bad.yaml", "api:\n  port: eighty\n");
    expect(() => loadConfig(file, dir)).toThrow(/bad\.yaml: api\.port: .*number/);
    const unknown = write("unknown.yaml", "worker:\n  slots: 2\n  colour: red\n");
    expect(() => loadConfig(unknown, dir)).toThrow(/worker\.colour: unknown field/);
    const unset = write("unset.yaml", "database:\n  url: ${env.SKIFF_SURELY_UNSET}\n");
    expect(() => loadConfig(unset, dir, {})).toThrow(
      /database\.url: \$\{env\.SKIFF_SURELY_UNSET\} is not set/,
    );
    expect(() => loadConfig(join(dir, "missing.yaml"), dir)).toThrow(/no such file/);
  });
});

describe("environment", () => {
  it("treats an empty SKIFF_HOME as unset, like the other variables", async () => {
    const { skiffHome } = await import("../src/env.ts");
    const saved = process.env.SKIFF_HOME;
    try {
      process.env.SKIFF_HOME = "";
      expect(skiffHome()).toBe(join(process.cwd(), ".skiff"));
      process.env.SKIFF_HOME = dir;
      expect(skiffHome()).toBe(dir);
    } finally {
      if (saved === undefined) delete process.env.SKIFF_HOME;
      else process.env.SKIFF_HOME = saved;
    }
  });
});
