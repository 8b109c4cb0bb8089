#!/usr/bin/env node
// `pnpm local:down [-- --volumes]`: stops and removes the local stack's containers (workers included)
// and network; with --volumes also the database, the API's home and the tokens local:up copied out,
// so the next local:up starts empty. Reads the same SKIFF_LOCAL_* settings as local:up.
import { rmSync } from "node:fs";
import { relative } from "node:path";
import { compose, composeCommand, root, settings } from "./local-compose.mjs";

process.chdir(root);
const s = settings({ quiet: true });
const volumes = process.argv.includes("--volumes");
compose(composeCommand(), s, [
  "down",
  "--remove-orphans",
  "--timeout",
  "30",
  ...(volumes ? ["--volumes"] : []),
]);
if (volumes) rmSync(s.dir, { recursive: true, force: true });
console.log(
  `skiff local stack ${s.project} stopped${volumes ? `; its volumes and ${relative(root, s.dir)} are gone` : "; volumes kept (--volumes drops them)"}`,
);
