#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerMigrate } from "./commands/migrate.ts";
import { registerServe } from "./commands/serve.ts";
import { registerWorker } from "./commands/worker.ts";
import { UsageError } from "./env.ts";

// Commands whose issue has not landed yet: listed in --help and honest about it when run.
const PLANNED: [string, string, string][] = [
  ["controller", "5", "run the fleet controller"],
  ["tui", "6", "open the admin console"],
  ["doctor", "5", "check dependencies and explain how to fix each problem"],
  ["jobs", "5", "submit, list, follow, cancel and retry jobs"],
  ["agents", "5", "list and drain agents"],
  ["fleet", "5", "show and scale the fleet"],
  ["audit", "5", "list, verify and export the audit log"],
  ["tokens", "5", "create, list and revoke API tokens"],
];

const program = new Command("skiff")
  .description("Skiff: a control stack for fleets of sandboxed job workers")
  .version("0.1.0")
  .showHelpAfterError("(run `skiff --help` for usage)")
  .exitOverride();

registerServe(program);
registerMigrate(program);
registerWorker(program);
for (const [name, issue, description] of PLANNED) {
  program
    .command(name)
    .description(`${description} (not yet available: issue ${issue})`)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new UsageError(
        `\`skiff ${name}\` is not yet available in this build (tracked in issue ${issue})`,
      );
    });
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
  } else if (err instanceof UsageError) {
    process.stderr.write(`skiff: ${err.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`skiff: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
