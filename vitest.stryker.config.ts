// The vitest config `pnpm test:mutation` runs in each Stryker sandbox (stryker.config.mjs); not used
// by `pnpm test`.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import base from "./vitest.config.ts";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  ...base,
  resolve: {
    // The workspace links in node_modules point back at the real checkout, whose code is not
    // mutated; send every `@skiff/*` import to the sandbox's own copy instead.
    alias: {
      "@skiff/bus": here("./packages/bus/src/index.ts"),
      "@skiff/protocol": here("./packages/protocol/src/index.ts"),
      "@skiff/store": here("./packages/store/src/index.ts"),
      "@skiff/testkit": here("./packages/testkit/src/index.ts"),
    },
  },
});
