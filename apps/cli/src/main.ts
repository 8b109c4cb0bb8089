#!/usr/bin/env node
// The `skiff` binary. Commands land with their issues; until then each says where it is tracked.
const PLANNED: Record<string, string> = {
  up: "5",
  api: "3",
  controller: "5",
  worker: "4",
  tui: "6",
  migrate: "5",
  doctor: "5",
  jobs: "5",
  agents: "5",
  fleet: "5",
  audit: "5",
  tokens: "5",
};

const [command] = process.argv.slice(2);
if (!command || command === "--help" || command === "-h") {
  console.log(`usage: skiff <command>\n\ncommands: ${Object.keys(PLANNED).join(", ")}`);
} else if (PLANNED[command]) {
  console.error(`skiff: \`${command}\` is not yet available (tracked in issue ${PLANNED[command]}).`);
  process.exitCode = 2;
} else {
  console.error(`skiff: unknown command "${command}"; run \`skiff --help\``);
  process.exitCode = 2;
}
