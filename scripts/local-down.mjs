#!/usr/bin/env node
// `pnpm local:down [-- --volumes]`: stops and removes the local stack's containers (workers included)
// and network; with --volumes also the database and the API's home, so the next local:up starts empty.
import { compose, composeCommand } from "./local-compose.mjs";

process.chdir(new URL("..", import.meta.url).pathname);
const volumes = process.argv.includes("--volumes");
compose(composeCommand(), ["down", "--remove-orphans", ...(volumes ? ["--volumes"] : [])]);
console.log(
  `skiff local stack stopped${volumes ? "; its volumes are gone" : "; volumes kept (--volumes drops them)"}`,
);
