#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerAgents } from "./commands/agents.ts";
import { registerAudit } from "./commands/audit.ts";
import { registerController } from "./commands/controller.ts";
import { registerDoctor } from "./commands/doctor.ts";
import { registerFleet } from "./commands/fleet.ts";
import { registerJobs } from "./commands/jobs.ts";
import { registerMigrate } from "./commands/migrate.ts";
import { registerServe } from "./commands/serve.ts";
import { registerTokens } from "./commands/tokens.ts";
import { registerTui } from "./commands/tui.ts";
import { registerWorker } from "./commands/worker.ts";
import { UsageError } from "./env.ts";
import { StartupError } from "./startup-errors.ts";

const program = new Command("skiff")
  .description("Skiff: a control stack for fleets of sandboxed job workers")
  .version("0.1.0")
  .showHelpAfterError("(run `skiff --help` for usage)")
  .exitOverride();

registerServe(program);
registerMigrate(program);
registerController(program);
registerWorker(program);
registerDoctor(program);
registerJobs(program);
registerAgents(program);
registerFleet(program);
registerAudit(program);
registerTokens(program);
registerTui(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.code === "commander.helpDisplayed" || err.code === "commander.version" ? 0 : 2;
  } else if (err instanceof UsageError) {
    process.stderr.write(`skiff: ${err.message}\n`);
    process.exitCode = 2;
  } else if (err instanceof StartupError) {
    process.stderr.write(`skiff: ${err.message}\nhint: ${err.hint}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`skiff: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
