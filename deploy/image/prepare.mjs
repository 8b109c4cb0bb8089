#!/usr/bin/env node
// Assembles what the image's final stage copies, into OUT (default deploy/image/.build):
//   node_modules/   the production dependencies of @skiff/cli and the workspace packages it uses,
//                   flat (`pnpm deploy --prod`, hoisted linker), so a bare `import "fastify"` resolves
//   dist/skiff.mjs  the workspace's own TypeScript bundled into one ES module (esbuild); third-party
//                   packages stay external, so their data files and workers keep working
//   migrations/     the SQL migrations, where the bundle's `new URL("../migrations/", import.meta.url)` looks
//   bin/skiff       `exec node /app/dist/skiff.mjs "$@"`, the image's entrypoint
//   healthcheck.mjs the HEALTHCHECK
// No tsx, TypeScript or test tooling reaches OUT. Run by the Dockerfile's build stage (SKIFF_DEPS=install),
// or on the host before `docker build --build-arg SKIFF_DEPS=context` where the build has no network
// (`--offline`: packages come from the host's pnpm store, the registry only for what it lacks).
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const args = process.argv.slice(2);
const offline = args.includes("--offline");
const out = resolve(args.find((a) => !a.startsWith("--")) ?? join(root, "deploy/image/.build"));

rmSync(out, { recursive: true, force: true });
execFileSync(
  "pnpm",
  [
    "--filter",
    "@skiff/cli",
    "--config.node-linker=hoisted",
    "deploy",
    "--prod",
    "--legacy",
    // pnpm's own --offline needs cached registry metadata, which a `--frozen-lockfile` install on a
    // fresh machine never writes; --prefer-offline takes every package it can from the store and
    // asks the registry only for what is missing there.
    ...(offline ? ["--prefer-offline"] : []),
    out,
  ],
  { cwd: root, stdio: ["ignore", "ignore", "inherit"] },
);
// The deploy copies the workspace packages' sources too; the bundle replaces them.
for (const extra of ["src", "test", "node_modules/@skiff", "node_modules/.bin"]) {
  rmSync(join(out, extra), { recursive: true, force: true });
}

// esbuild comes with tsx (a root devDependency); it is needed here only, never at run time.
const requireFromTsx = createRequire(createRequire(join(root, "package.json")).resolve("tsx/package.json"));
const esbuild = requireFromTsx("esbuild");
await esbuild.build({
  entryPoints: [join(root, "apps/cli/src/main.ts")],
  outfile: join(out, "dist/skiff.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
  // Commander and friends are CommonJS: give the ES bundle a `require` for their `require()` calls.
  banner: {
    js: "import { createRequire as __skiffRequire } from 'node:module'; const require = __skiffRequire(import.meta.url);",
  },
  plugins: [
    {
      name: "third-party-external",
      setup(build) {
        build.onResolve({ filter: /^[^./]/ }, (a) =>
          a.path.startsWith("@skiff/") || a.path.startsWith("node:")
            ? undefined
            : { path: a.path, external: true },
        );
      },
    },
  ],
});

cpSync(join(root, "packages/store/migrations"), join(out, "migrations"), { recursive: true });
cpSync(join(root, "deploy/image/healthcheck.mjs"), join(out, "healthcheck.mjs"));
mkdirSync(join(out, "bin"), { recursive: true });
writeFileSync(join(out, "bin/skiff"), '#!/bin/sh\nexec node /app/dist/skiff.mjs "$@"\n');
chmodSync(join(out, "bin/skiff"), 0o755);
writeFileSync(
  join(out, "package.json"),
  `${JSON.stringify({ name: "skiff-image", private: true, type: "module" }, null, 2)}\n`,
);
console.error(`prepare: image contents in ${out}`);
