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
const cmd = composeCommand();
if (compose(cmd, s, ["ps", "-q"], { capture: true }).trim() === "")
  console.log(
    `local: no container of project ${s.project} is running; if you started another, set SKIFF_LOCAL_PROJECT as local:up printed it`,
  );
// The controller first: while it runs it may start a worker that `down` has not listed, which
// would then outlive the stack.
compose(cmd, s, ["stop", "--timeout", "30", "controller"]);
compose(cmd, s, ["down", "--remove-orphans", "--timeout", "30", ...(volumes ? ["--volumes"] : [])]);
if (volumes) {
  rmSync(s.dir, { recursive: true, force: true });
  // The image contents local:up assembled for this project (SKIFF_IMAGE_DEPS=context).
  if (s.project !== "skiff-local")
    rmSync(`deploy/image/.build-${s.project}`, { recursive: true, force: true });
}
console.log(
  `skiff local stack ${s.project} stopped${volumes ? `; its volumes and ${relative(root, s.dir)} are gone` : "; volumes kept (--volumes drops them)"}`,
);
